//! A fixed-size, allocation-free histogram of `u64` samples (HDR-like).
//!
//! # Algorithm
//!
//! Values below [`SUB`] get one bucket each. Above, every power of two
//! `[2^e, 2^(e+1))` is split into [`SUB`] equal sub-buckets, so a bucket's
//! width is at most 1/[`SUB`] of its lower bound: a quantile read from the
//! histogram is within 12.5 % of the true sample (HdrHistogram with one
//! significant binary digit more than a plain log2 histogram). The bucket of
//! a value is found with one `leading_zeros`, a shift and a mask, so
//! [`Histogram::record`] costs a handful of instructions and never allocates:
//! cheap enough to run once per loop iteration.
//!
//! The exact count, sum, minimum and maximum are kept beside the buckets, so
//! `max` is exact and quantiles are clamped to it.
//!
//! # Contract
//!
//! [`Histogram::quantile`] returns the upper bound of the bucket holding the
//! q-th sample (never below the true value, at most 12.5 % above it), or 0
//! for an empty histogram.

/// Sub-buckets per power of two (3 bits: at most 12.5 % relative error).
pub const SUB_BITS: u32 = 3;
/// `2^SUB_BITS`.
pub const SUB: u64 = 1 << SUB_BITS;
/// Buckets needed to cover every `u64`: `SUB` exact ones, then `SUB` per
/// power of two from `2^SUB_BITS` to `2^63`.
pub const BUCKETS: usize = (SUB + (64 - SUB_BITS as u64) * SUB) as usize;

/// Counts of `u64` samples in [`BUCKETS`] fixed buckets.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .field("max", &self.max)
            .finish()
    }
}

/// Bucket index of `v`.
#[inline]
pub fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS
    let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
    (SUB + (e - SUB_BITS) as u64 * SUB + sub) as usize
}

/// Largest value that falls in bucket `i`.
pub fn bucket_upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let e = (i - SUB) / SUB + SUB_BITS as u64;
    let sub = (i - SUB) % SUB;
    let width = 1u64 << (e - SUB_BITS as u64);
    let lower = (1u64 << e) + sub * width;
    lower + (width - 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Count one sample.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.sum += v as u128;
        if v > self.max {
            self.max = v;
        }
        if v < self.min {
            self.min = v;
        }
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the samples (saturated to `u64`).
    pub fn sum(&self) -> u64 {
        self.sum.min(u64::MAX as u128) as u64
    }

    /// Largest sample (0 if empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Smallest sample (0 if empty).
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// Mean of the samples (0 if empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The counts in power-of-two ranges, for a coarse chart: one
    /// `(upper, count)` per range `[2^(k-1), 2^k - 1]` (and `(0, n)` for
    /// zeros), from the range of the smallest sample to that of the largest,
    /// empty ranges between included. At most 65 entries.
    pub fn log2_buckets(&self) -> Vec<(u64, u64)> {
        let mut groups = [0u64; 65];
        for (i, &c) in self.counts.iter().enumerate() {
            if c > 0 {
                // Every value of a bucket has the bit length of its upper
                // bound (buckets never straddle a power of two).
                let bits = 64 - bucket_upper(i).leading_zeros() as usize;
                groups[bits] += c;
            }
        }
        let Some(first) = groups.iter().position(|&c| c > 0) else {
            return Vec::new();
        };
        let last = groups.iter().rposition(|&c| c > 0).unwrap_or(first);
        (first..=last)
            .map(|bits| {
                let upper = if bits == 0 {
                    0
                } else if bits == 64 {
                    u64::MAX
                } else {
                    (1u64 << bits) - 1
                };
                (upper, groups[bits])
            })
            .collect()
    }

    /// The `q`-quantile (`0.0..=1.0`), see the module contract.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let q = q.clamp(0.0, 1.0);
        // Rank of the sample wanted, 1-based: ceil(q * count), at least 1.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_upper(i).min(self.max).max(self.min());
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(7), 7);
        assert_eq!(bucket_of(8), 8);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        let mut last = 0;
        for v in (0..5000u64).chain([1 << 40, (1 << 40) + 1, u64::MAX - 1]) {
            let b = bucket_of(v);
            assert!(b >= last || v >= 1 << 40);
            assert!(v <= bucket_upper(b), "{v} above its bucket {b}");
            if b > 0 {
                assert!(v > bucket_upper(b - 1), "{v} belongs below {b}");
            }
            last = b;
        }
        assert_eq!(bucket_upper(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn relative_error_is_bounded() {
        for v in [9u64, 100, 1000, 12345, 1 << 33, 987_654_321] {
            let up = bucket_upper(bucket_of(v));
            assert!((up - v) as f64 <= v as f64 / SUB as f64, "{v} -> {up}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_run() {
        let mut h = Histogram::new();
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.sum(), 500_500);
        assert_eq!(h.max(), 1000);
        assert_eq!(h.min(), 1);
        let p50 = h.quantile(0.5);
        assert!((500..=563).contains(&p50), "p50 {p50}");
        let p99 = h.quantile(0.99);
        assert!((990..=1000).contains(&p99), "p99 {p99}");
        assert_eq!(h.quantile(1.0), 1000);
        assert_eq!(h.quantile(0.0), 1);
    }

    #[test]
    fn log2_buckets_group_by_bit_length() {
        let mut h = Histogram::new();
        assert!(h.log2_buckets().is_empty());
        for v in [0, 3, 3, 100, 127, 128, 5000] {
            h.record(v);
        }
        let b = h.log2_buckets();
        assert_eq!(b.first(), Some(&(0, 1)));
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 7);
        assert!(b.contains(&(3, 2)));
        assert!(b.contains(&(127, 2)));
        assert!(b.contains(&(255, 1)));
        assert_eq!(b.last(), Some(&(8191, 1)));
    }

    #[test]
    fn empty_and_single() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        assert_eq!(h.max(), 0);
        assert_eq!(h.min(), 0);
        h.record(42);
        assert_eq!(h.quantile(0.5), 42);
        assert_eq!(h.quantile(0.99), 42);
    }
}
