//! Data sets, loaded into ndarray arrays.
//!
//! [`mnist`] reads MNIST and every other data set stored in the same IDX
//! files (Fashion-MNIST, KMNIST, ...), gzip-compressed or not.

pub mod mnist;
