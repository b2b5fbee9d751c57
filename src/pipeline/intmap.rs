//! Hash maps keyed by integers the pipeline makes itself (sequence
//! numbers, a table definition's address), hashed with one multiplication:
//! SipHash, the standard maps' default, showed in the profile of the
//! per-row path, and these keys come from no one who could choose them to
//! collide.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from an integer key.
pub type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// Fibonacci hashing of one integer, its high half folded into the low
/// bits the table picks buckets with (addresses are multiples of 8 or 16).
#[derive(Default, Clone, Copy)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_sequences_spread_over_the_low_bits() {
        // Keys 16 apart (addresses) and 1 apart (sequence numbers) land in
        // many of 64 buckets picked by the low six bits.
        for step in [1u64, 16] {
            let buckets: std::collections::HashSet<u64> = (0..256u64)
                .map(|i| {
                    let mut h = IntHasher::default();
                    h.write_u64(0x7f00_0000_0000 + i * step);
                    h.finish() & 63
                })
                .collect();
            assert!(buckets.len() > 48, "step {step}: {} buckets", buckets.len());
        }
    }
}
