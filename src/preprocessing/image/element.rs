//! The element types that the augmenter reads: `f32` and `u8`.

/// An element type of the images (and labels) that
/// [`ImageDataGenerator`](super::ImageDataGenerator) accepts: `f32`, or `u8`
/// as pictures and MNIST files hold them.
///
/// A `u8` value converts exactly (`255` becomes `255.0`, never wraps); the
/// generator's `rescale` is applied after the transform, as in Keras.
/// The trait is sealed: it cannot be implemented outside kerust.
pub trait Element: sealed::Sealed + Copy + Send + Sync + 'static {
    /// The value as `f32`, exactly.
    fn to_f32(self) -> f32;

    /// The value as `f64`, exactly.
    fn to_f64(self) -> f64;
}

impl Element for f32 {
    fn to_f32(self) -> f32 {
        self
    }

    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Element for u8 {
    fn to_f32(self) -> f32 {
        f32::from(self)
    }

    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

pub(crate) use sealed::{Sealed, Store};

mod sealed {
    /// Images held by a flow in the element type they came in, row-major.
    #[derive(Debug)]
    pub enum Store {
        /// Floating-point pixels.
        F32(Vec<f32>),
        /// Byte pixels, converted per image when a batch is made.
        U8(Vec<u8>),
    }

    impl Store {
        /// Number of values held.
        pub fn len(&self) -> usize {
            match self {
                Store::F32(v) => v.len(),
                Store::U8(v) => v.len(),
            }
        }
    }

    pub trait Sealed: Sized {
        /// Wraps row-major values into a store of this element type.
        fn store(values: Vec<Self>) -> Store;

        /// Bits that are all zero exactly when the value is zero, of
        /// either sign (NaN is not zero).
        fn nonzero_bits(self) -> u32;
    }

    impl Sealed for f32 {
        fn store(values: Vec<f32>) -> Store {
            Store::F32(values)
        }

        #[inline(always)]
        fn nonzero_bits(self) -> u32 {
            self.to_bits() << 1
        }
    }

    impl Sealed for u8 {
        fn store(values: Vec<u8>) -> Store {
            Store::U8(values)
        }

        #[inline(always)]
        fn nonzero_bits(self) -> u32 {
            u32::from(self)
        }
    }
}
