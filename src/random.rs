//! Seeded random streams.
//!
//! Every random draw in kerust comes from a ChaCha stream derived from a
//! tuple `(seed, purpose, epoch, index)`, never from a global generator and
//! never from the order in which threads finish. Two runs with one seed draw
//! the same numbers, with any number of threads.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a random stream is used for. Distinct purposes never share numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// Initial weights of a layer (`index` is the layer's position).
    Init,
    /// The order of the samples in an epoch.
    Shuffle,
    /// The random transform of one augmented image.
    Augment,
    /// The mask a [`Dropout`](crate::layers::Dropout) layer draws in one
    /// training step (`epoch` and `index` are the step's).
    Dropout,
    /// Any use of a user's own layer or callback, numbered by the user.
    User(u32),
}

impl Purpose {
    fn code(self) -> u64 {
        match self {
            Purpose::Init => 1,
            Purpose::Shuffle => 2,
            Purpose::Augment => 3,
            Purpose::Dropout => 4,
            Purpose::User(n) => 0x1_0000_0000 | u64::from(n),
        }
    }
}

/// The random stream for `(seed, purpose, epoch, index)`.
///
/// # Examples
///
/// ```
/// use kerust::random::{stream, Purpose};
/// use rand::Rng;
///
/// let a: f32 = stream(42, Purpose::Augment, 0, 7).random();
/// let b: f32 = stream(42, Purpose::Augment, 0, 7).random();
/// assert_eq!(a, b);
/// ```
pub fn stream(seed: u64, purpose: Purpose, epoch: u64, index: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    let mut state = splitmix(seed ^ splitmix(purpose.code()));
    for (word, value) in [epoch, index, 0x6b65_7275_7374, purpose.code()]
        .into_iter()
        .enumerate()
    {
        state = splitmix(state ^ value);
        key[word * 8..word * 8 + 8].copy_from_slice(&state.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_differ_by_every_coordinate() {
        let base: u64 = stream(1, Purpose::Shuffle, 2, 3).random();
        assert_ne!(base, stream(0, Purpose::Shuffle, 2, 3).random::<u64>());
        assert_ne!(base, stream(1, Purpose::Augment, 2, 3).random::<u64>());
        assert_ne!(base, stream(1, Purpose::Shuffle, 1, 3).random::<u64>());
        assert_ne!(base, stream(1, Purpose::Shuffle, 2, 4).random::<u64>());
        assert_eq!(base, stream(1, Purpose::Shuffle, 2, 3).random::<u64>());
    }
}
