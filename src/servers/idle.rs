//! The line servers' idle-timeout policy: notice, `end()`, then `destroy()`
//! after a short grace if the peer has not closed.
//!
//! The seed only called `end()` (D-X4): a peer that never sent its FIN kept the
//! socket, the timer fired again a period later and wrote after end. Here the
//! timeout writes the notice and ends at once, and arms one grace timer whose
//! tag is the connection ([`ConnId::to_u64`]); the app's `on_timer` passes the
//! tag to [`on_grace_timer`]. The caller keeps the returned [`TimerId`] and
//! clears it in `on_close`, so no timer outlives its connection (D8.4).

use crate::{ConnId, Reactor, TimerId};
use std::time::Duration;

/// Time a peer gets to close after our idle notice and FIN before it is
/// destroyed: long enough for a live client to read the notice, short enough
/// that a vanished one does not hold a descriptor for another idle period.
pub const IDLE_GRACE: Duration = Duration::from_secs(2);

/// The connection timed out: write `notice`, end, and arm the grace timer.
/// A connection already ended (by `/quit`, an error line...) is destroyed at
/// once instead. Returns the grace timer, if one was armed.
pub fn idle_close(r: &mut Reactor, conn: ConnId, notice: String) -> Option<TimerId> {
    if r.is_writable(conn) {
        log::info!("{conn} idle: notice, end, destroy in {IDLE_GRACE:?} unless closed");
        let _ = r.end_with(conn, notice);
        // From now on the grace timer decides, not another idle period.
        r.set_idle_timeout(conn, None);
        Some(r.set_timeout(IDLE_GRACE, conn.to_u64()))
    } else {
        log::info!("{conn} idle after end: destroying");
        r.destroy(conn);
        None
    }
}

/// A grace timer fired: destroy the connection if it still exists (a stale
/// id is a no-op: ids are generation-tagged).
pub fn on_grace_timer(r: &mut Reactor, tag: u64) {
    let conn = ConnId::from_u64(tag);
    if r.state(conn).is_some() {
        log::info!("{conn} did not close within the grace period: destroying");
        r.destroy(conn);
    }
}
