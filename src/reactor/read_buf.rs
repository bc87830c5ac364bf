//! The data path's socket calls: reading into a buffer's spare capacity
//! (the one `unsafe` line of the crate) and sending.
//!
//! The loop reads into its own `BytesMut` (`READ_CHUNK`, 256 KiB) and, when the
//! connection has nothing buffered, hands that buffer over whole, so the
//! bytes are never copied between the kernel and `on_data`. Safe Rust can
//! only read into initialised memory: zeroing the buffer before every read, or
//! reading into a scratch array and copying out, costs a memory pass per
//! read. Measured on the 64 KiB stream cell (`benches/compare`, perf): the
//! copy out of the scratch array was 10 % of the echo server's CPU.
//!
//! The system call is `recv(2)`, not `read(2)`: on a socket both do the same,
//! but `read` goes through the VFS layer first (`vfs_read`, `fdget_pos`: 6 %
//! of the heartbeat server's samples and 4.5 % of the load generator's under
//! `perf record`), which `recv` skips.
//!
//! Both are direct system calls (rustix), with no libc wrapper between.
//!
//! Contract: `read_into` appends what one `recv(2)` returned to `buf`, never
//! more than its spare capacity; the caller reserves first (0 spare bytes
//! would read nothing and look like a FIN). `fd` must be a socket.

use bytes::BytesMut;
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};
use std::os::fd::AsFd;

/// One `recv(2)` from the socket `fd` into the spare capacity of `buf`; returns the
/// byte count (0: end of stream) and grows `buf.len()` by it.
#[allow(unsafe_code)]
pub(crate) fn read_into(fd: impl AsFd, buf: &mut BytesMut) -> Result<usize, Errno> {
    debug_assert!(buf.capacity() > buf.len(), "reserve before reading");
    let ((filled, _), _) = rustix::net::recv(fd, buf.spare_capacity_mut(), RecvFlags::empty())?;
    let n = filled.len();
    // SAFETY: the kernel wrote the first `n` bytes of the spare capacity;
    // rustix hands them back initialised as `filled`, and `n` is at most the
    // spare capacity, so `len + n <= capacity`.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// One `send(2)` of `buf` to the socket `fd` with `MSG_NOSIGNAL` (a peer
/// that reset gives `EPIPE`, not a `SIGPIPE` that kills the process);
/// returns the byte count the kernel took.
///
/// A direct system call, like `read_into`: std's `write` on a socket goes
/// through libc's `send`, which wraps the call in two cancellation-point
/// calls once the process has a second thread (0.35 % of a two-thread load
/// generator's samples with 1,000 connections under `perf record`; a
/// server with `--workers` has several threads).
#[inline]
pub(crate) fn send(fd: impl AsFd, buf: &[u8]) -> Result<usize, Errno> {
    rustix::net::send(fd, buf, SendFlags::NOSIGNAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_append_and_end_of_stream_is_zero() {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().expect("pair");
        b.write_all(b"hello").expect("write");
        let mut buf = BytesMut::with_capacity(3);
        buf.extend_from_slice(b"x");
        // Only the spare capacity is filled: 2 of the 5 bytes.
        assert_eq!(read_into(&a, &mut buf), Ok(2));
        assert_eq!(&buf[..], b"xhe");
        buf.reserve(16);
        assert_eq!(read_into(&a, &mut buf), Ok(3));
        assert_eq!(&buf[..], b"xhello");
        drop(b);
        buf.reserve(16);
        assert_eq!(read_into(&a, &mut buf), Ok(0));
        assert_eq!(&buf[..], b"xhello");
    }
}
