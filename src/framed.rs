//! Framing a connection: drive a sans-IO [`Decoder`] over a connection's
//! read buffer, as tokio-util's `Framed` does for a stream.
//!
//! Algorithm: on every `data`, [`Framed::decode_all`] corks the connection,
//! decodes complete items from the front of the buffer one at a time and
//! hands each (or each decode error) to the caller's closure, then uncorks:
//! the replies to a pipelined batch leave in one `writev`. A partial item
//! stays in the buffer for the next read. At the peer's FIN,
//! [`Framed::decode_eof`] does the same with the decoder's end-of-stream
//! rule (a last line without its terminator, say).
//!
//! Caller's contract: the closure answers an item or an error and returns
//! [`Flow`]. On an error it decides the policy: reply and go on
//! ([`Flow::Continue`]), or end or destroy the connection and return
//! [`Flow::Stop`]. Decoding also stops by itself once the connection no
//! longer accepts writes (ended, destroyed, evicted): nothing more could be
//! answered, so the rest of the buffer is dropped. It stops too when the
//! closure pauses the connection; the rest is delivered again at `resume`.

use crate::codec::Decoder;
use crate::reactor::token::ConnId;
use crate::reactor::Reactor;
use bytes::BytesMut;
use std::ops::DerefMut;

/// What to do after one item.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Decode the next item.
    Continue,
    /// Stop decoding; what is left stays in the buffer (drop it yourself if
    /// it must not be delivered again).
    Stop,
}

/// A decoder bound to one connection's byte stream (keep it in the
/// connection's state).
#[derive(Clone, Debug, Default)]
pub struct Framed<D> {
    /// The sans-IO decoder.
    pub decoder: D,
}

impl<D: Decoder> Framed<D> {
    /// Frame a connection with `decoder`.
    pub fn new(decoder: D) -> Framed<D> {
        Framed { decoder }
    }

    /// Decode every complete item in `data`, corked, handing each to `f`
    /// (see the module docs). `cx` is the callback's context (a
    /// [`crate::Cx`] or the [`Reactor`] itself).
    pub fn decode_all<C, F>(&mut self, cx: &mut C, conn: ConnId, data: &mut BytesMut, f: F)
    where
        C: DerefMut<Target = Reactor>,
        F: FnMut(&mut C, Result<D::Item, D::Error>) -> Flow,
    {
        self.run(cx, conn, data, f, false)
    }

    /// [`Framed::decode_all`] at the end of the stream (call from `end`).
    pub fn decode_eof<C, F>(&mut self, cx: &mut C, conn: ConnId, data: &mut BytesMut, f: F)
    where
        C: DerefMut<Target = Reactor>,
        F: FnMut(&mut C, Result<D::Item, D::Error>) -> Flow,
    {
        self.run(cx, conn, data, f, true)
    }

    fn run<C, F>(&mut self, cx: &mut C, conn: ConnId, data: &mut BytesMut, mut f: F, eof: bool)
    where
        C: DerefMut<Target = Reactor>,
        F: FnMut(&mut C, Result<D::Item, D::Error>) -> Flow,
    {
        cx.cork(conn);
        loop {
            if !cx.is_writable(conn) {
                // Ended or destroyed: nothing more can be answered.
                data.clear();
                break;
            }
            if cx.is_paused(conn) {
                break;
            }
            let item = if eof {
                self.decoder.decode_eof(data)
            } else {
                self.decoder.decode(data)
            };
            let item = match item {
                Ok(Some(item)) => Ok(item),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            if f(cx, item) == Flow::Stop {
                break;
            }
        }
        cx.uncork(conn);
    }
}
