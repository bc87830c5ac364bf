//! The reconnect timer of a client: a [`Backoff`] plus the one timer it arms.
//!
//! Shared by the interactive line client and the heartbeat client, which both
//! reconnect once per lost connection (the tutorial's two clients reconnected
//! from more than one of `end`, `error` and `close`, so one failure started two
//! connections, and kept no timer a quit could cancel; see
//! docs/TUTORIAL-DEFECTS.md). Caller's contract: call [`Reconnect::schedule`]
//! from `close` only, exactly once per
//! lost or failed connection; call [`Reconnect::fired`] when the timer's tag
//! arrives, [`Reconnect::connected`] on a successful connect (or whatever the
//! client counts as one), and [`Reconnect::cancel`] on quit, so no reconnect
//! fires after it.

use super::backoff::Backoff;
use crate::{Cx, Service, TimerId};
use std::time::Duration;

/// A backoff and its pending timer.
#[derive(Clone, Debug)]
pub struct Reconnect {
    backoff: Backoff,
    timer: Option<TimerId>,
}

impl Reconnect {
    /// Reconnects paced by `backoff`.
    pub fn new(backoff: Backoff) -> Reconnect {
        Reconnect {
            backoff,
            timer: None,
        }
    }

    /// The backoff (attempt count, configuration).
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// Retries scheduled since the last successful connect.
    pub fn attempts(&self) -> u32 {
        self.backoff.attempts()
    }

    /// The attempt limit.
    pub fn max_attempts(&self) -> u32 {
        self.backoff.config().max_attempts
    }

    /// A connection succeeded: the next failure starts from the first delay.
    pub fn connected(&mut self) {
        self.backoff.reset();
    }

    /// A connection was lost: arm the service's timer with `tag` and return
    /// its delay, or `None` when the attempts are used up (give up).
    pub fn schedule<S: Service>(&mut self, cx: &mut Cx<'_, S>, tag: S::Tag) -> Option<Duration> {
        let now = cx.now();
        let at = self.backoff.on_failure(now)?;
        let delay = at.saturating_duration_since(now);
        self.cancel(cx);
        self.timer = Some(cx.set_timeout(delay, tag));
        Some(delay)
    }

    /// The timer fired (the caller now connects).
    pub fn fired(&mut self) {
        self.timer = None;
    }

    /// Cancel a pending reconnect, if any.
    pub fn cancel<S: Service>(&mut self, cx: &mut Cx<'_, S>) {
        if let Some(t) = self.timer.take() {
            cx.clear_timer(t);
        }
    }
}
