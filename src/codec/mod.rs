//! Sans-IO decoders for the seed programs' wire formats.
//!
//! Nothing in this module touches a socket. The reactor keeps one [`bytes::BytesMut`] read buffer
//! per connection and appends to it exactly the bytes a read returned. The application then calls
//! a decoder's `decode(&mut buf)` in a loop. Each call that returns a message has consumed that
//! message (and only that message) from the front of the buffer; `Ok(None)` means "need more
//! bytes", and the partial tail stays in the buffer for the next read.
//!
//! | Decoder | Format | Limit | Programs |
//! |---|---|---|---|
//! | [`LineDecoder`] | text lines ended by LF or CRLF, UTF-8 | [`DEFAULT_MAX_LINE`] bytes per line | 02, 03, 08, 09, 10 and the 07 client |
//! | [`FrameDecoder`] | `u32` big-endian body length, then the body | [`DEFAULT_MAX_FRAME`] bytes per body | 06 |
//! | [`HeaderDecoder`] | `Key: Value` lines closed by an empty line | [`MAX_HEADER_BYTES`] per block | 07 |
//!
//! Caller's contract, common to all decoders:
//!
//! * Use one decoder per connection and always pass it the same buffer.
//! * Call `decode` until it returns `Ok(None)` or an error, after every read.
//! * Treat `Err(..)` as described by each decoder: a size-limit error means the connection should
//!   get an error reply and be closed; the decoder's state after it is unspecified.
//! * The decoders never reserve capacity from a length the peer declared, so a buffer only grows
//!   by what actually arrived, and each decoder bounds how much it lets accumulate.
//!
//! These decoders fix the framing defects of the tutorial programs (see docs/TUTORIAL-DEFECTS.md):
//! no line framing in the command, chat, half-close and heartbeat programs (one read was taken as
//! one message), UTF-8 characters split across reads, a non-object JSON body crashing the framing
//! server, no maximum frame length, bodies shorter than 4 bytes stalling, quadratic copying of
//! large frames, an unbounded and rescanned upload header, loose header parsing, and path
//! traversal through the upload's `Filename`.

pub mod frame;
pub mod lines;

/// What every decoder here is: feed it the connection's read buffer, get
/// the next complete item or `Ok(None)` for "need more bytes". The session
/// helper [`crate::framed::Framed`] drives any `Decoder` over a connection.
pub trait Decoder {
    /// One decoded message.
    type Item;
    /// Why the bytes are not a message (a limit, malformed input).
    type Error: std::fmt::Display;
    /// Decode and consume the next complete item from the front of `buf`.
    fn decode(&mut self, buf: &mut bytes::BytesMut) -> Result<Option<Self::Item>, Self::Error>;
    /// Like `decode` at the end of the stream: a decoder whose last item
    /// needs no terminator returns it here. By default, as `decode`.
    fn decode_eof(&mut self, buf: &mut bytes::BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        self.decode(buf)
    }
}

impl Decoder for lines::LineDecoder {
    type Item = String;
    type Error = lines::LineError;
    fn decode(&mut self, buf: &mut bytes::BytesMut) -> Result<Option<String>, lines::LineError> {
        lines::LineDecoder::decode(self, buf)
    }
    fn decode_eof(
        &mut self,
        buf: &mut bytes::BytesMut,
    ) -> Result<Option<String>, lines::LineError> {
        lines::LineDecoder::decode_eof(self, buf)
    }
}

impl Decoder for frame::FrameDecoder {
    type Item = bytes::Bytes;
    type Error = frame::FrameError;
    fn decode(
        &mut self,
        buf: &mut bytes::BytesMut,
    ) -> Result<Option<bytes::Bytes>, frame::FrameError> {
        frame::FrameDecoder::decode(self, buf)
    }
}
pub mod upload_header;

pub use frame::{
    encode_frame, parse_message, FrameDecoder, FrameError, MessageError, DEFAULT_MAX_FRAME,
    FRAME_HEADER_LEN,
};
pub use lines::{LineDecoder, LineError, DEFAULT_MAX_LINE};
pub use upload_header::{
    validate_filename, FilenameError, HeaderDecoder, HeaderError, UploadHeader,
    DEFAULT_MAX_FILE_SIZE, MAX_FILENAME_BYTES, MAX_HEADERS, MAX_HEADER_BYTES,
};

/// A tiny deterministic PRNG (xorshift64*) for the decoders' split tests.
#[cfg(test)]
pub(crate) mod test_rng {
    /// xorshift64* state.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        /// Next pseudo-random value.
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        /// Uniform-ish value in `0..n`.
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }
}
