//! The byte stream every echo workload sends, so every echoed byte can be
//! checked without keeping a copy of what was sent.
//!
//! Byte `i` of a connection's stream is `BLOCK[(seed + i) % PERIOD]`, where
//! `BLOCK` is pseudo-random and `PERIOD` is prime: a chunk echoed out of
//! order, duplicated, or from another connection (another seed) compares
//! unequal. The block is stored twice over in one `Bytes`, so any run of up
//! to `PERIOD` bytes is one contiguous slice: sending is a reference-count
//! bump, not a copy, and checking is a `memcmp`.

use bytes::Bytes;

/// Length of the repeating block: a prime, so it shares no factor with any
/// message size and misplaced data is caught. 64 KiB, as `echoload`'s: a
/// thousand connections' windows into it overlap, so the lines that the
/// checking `memcmp` reads are more often in cache (with 1,000 ping-pong
/// connections `cachegrind` counts 1.2 misses per round trip in it, against
/// 1.5 with a 128 KiB block).
pub const PERIOD: usize = 65_521;

/// The repeating block, twice over.
#[derive(Clone, Debug)]
pub struct Pattern {
    twice: Bytes,
}

impl Default for Pattern {
    fn default() -> Self {
        Self::new()
    }
}

impl Pattern {
    /// Build the block (splitmix64 output).
    pub fn new() -> Pattern {
        let mut x: u64 = 0x0123_4567_89AB_CDEF;
        let mut block = Vec::with_capacity(PERIOD + 8);
        while block.len() < PERIOD {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            block.extend_from_slice(&z.to_le_bytes());
        }
        block.truncate(PERIOD);
        let mut twice = block.clone();
        twice.extend_from_slice(&block);
        Pattern {
            twice: Bytes::from(twice),
        }
    }

    /// Where in the stored pattern byte `offset` of stream `seed` lies.
    pub fn offset(seed: u64, offset: u64) -> usize {
        (seed.wrapping_add(offset) % PERIOD as u64) as usize
    }

    /// Start fetching `lines` cache lines of the stored pattern from `at`
    /// (an [`Pattern::offset`]) into the cache: a hint.
    pub fn prefetch(&self, at: usize, lines: usize) {
        if let Some(b) = self.twice.get(at) {
            crate::reactor::prefetch_lines(b, lines);
        }
    }

    /// Bytes `offset .. offset + len` of stream `seed`, as slices of at most
    /// `PERIOD` bytes each (one slice for any message up to 64 KiB).
    pub fn chunks(&self, seed: u64, offset: u64, len: usize) -> impl Iterator<Item = Bytes> + '_ {
        self.ranges(seed, offset, len).map(|r| self.twice.slice(r))
    }

    /// [`Pattern::chunks`] as borrowed slices (for
    /// [`crate::Reactor::write_slice`]: no reference count to bump).
    pub fn slices(&self, seed: u64, offset: u64, len: usize) -> impl Iterator<Item = &[u8]> + '_ {
        self.ranges(seed, offset, len).map(|r| &self.twice[r])
    }

    /// Where in the doubled block each chunk of [`Pattern::chunks`] is.
    fn ranges(
        &self,
        seed: u64,
        offset: u64,
        len: usize,
    ) -> impl Iterator<Item = std::ops::Range<usize>> {
        let mut done = 0usize;
        std::iter::from_fn(move || {
            if done >= len {
                return None;
            }
            let n = (len - done).min(PERIOD);
            let s = Self::offset(seed, offset + done as u64);
            done += n;
            Some(s..s + n)
        })
    }

    /// Check an arrival against stream `seed` at `*received`, advance
    /// `*received` past it and clear the buffer; returns the mismatches.
    pub fn verify_arrival(&self, seed: u64, received: &mut u64, data: &mut bytes::BytesMut) -> u64 {
        let bad = self.mismatches(seed, *received, data);
        *received += data.len() as u64;
        data.clear();
        bad
    }

    /// How many bytes of `data` differ from stream `seed` at `offset`.
    pub fn mismatches(&self, seed: u64, offset: u64, data: &[u8]) -> u64 {
        let mut bad = 0u64;
        let mut pos = 0usize;
        while pos < data.len() {
            let n = (data.len() - pos).min(PERIOD);
            let s = Self::offset(seed, offset + pos as u64);
            let want = &self.twice[s..s + n];
            let got = &data[pos..pos + n];
            if want != got {
                bad += want.iter().zip(got).filter(|(a, b)| a != b).count() as u64;
            }
            pos += n;
        }
        bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_continuous_and_checked() {
        let p = Pattern::new();
        let mut stream = Vec::new();
        let mut off = 0u64;
        for len in [1usize, 64, 1000, PERIOD, PERIOD + 5, 3] {
            for c in p.chunks(7, off, len) {
                stream.extend_from_slice(&c);
            }
            off += len as u64;
        }
        assert_eq!(stream.len() as u64, off);
        // The borrowed form is the same stream.
        let mut again = Vec::new();
        for c in p.slices(7, 0, off as usize) {
            again.extend_from_slice(c);
        }
        assert_eq!(again, stream);
        assert_eq!(p.mismatches(7, 0, &stream), 0);
        // Checking in odd pieces agrees.
        assert_eq!(p.mismatches(7, 10, &stream[10..5000]), 0);
        // Another seed, or a shifted offset, does not.
        assert!(p.mismatches(8, 0, &stream[..64]) > 0);
        assert!(p.mismatches(7, 1, &stream[..64]) > 0);
        stream[100] ^= 1;
        assert_eq!(p.mismatches(7, 0, &stream), 1);
    }
}
