//! Seeds of the simulator's random streams. Each concern draws from its own generator, seeded
//! from the scenario's seed, so that changing one part of a scenario (more agents) leaves the
//! draws of the others (the same customers arriving with the same needs) unchanged.

/// A seed for stream `stream` of a run seeded with `seed` (SplitMix64 of both).
pub(super) fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_of_one_seed_differ_and_are_stable() {
        assert_ne!(derive_seed(1, 0), derive_seed(1, 1));
        assert_ne!(derive_seed(1, 0), derive_seed(2, 0));
        assert_eq!(derive_seed(42, 7), derive_seed(42, 7));
    }
}
