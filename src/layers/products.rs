//! A dense layer's forward product `x · w`, read from the operands where
//! they lie and skipping the terms whose input is zero.
//!
//! A digit is mostly blank paper: four fifths of an MNIST input are zeros,
//! and so are about half of a ReLU layer's outputs. Every term `0 · w` of
//! such a product adds nothing, so each row's non-zero entries are listed
//! once and only their terms are summed, straight from the row-major
//! weights: no copy of the weights into a packed buffer either.
//!
//! The weight gradient `xᵀ · g` is left to matrixmultiply: its shared
//! dimension is the batch, 32 terms, and the same skipping did not beat
//! matrixmultiply's kernels on the processors it was measured on.
//!
//! The sums are the ones matrixmultiply computes on processors with fused
//! multiply-add, to the bit: the shared dimension is cut into runs of 256
//! (its `kc` for `f32`), each run summed from zero by fused multiply-adds in
//! order, and the runs' sums added to the total in order. A skipped term
//! would have added `0 · w`, which changes no sum, with two exceptions that
//! finite weights of normal size never meet: a weight that is infinite or
//! NaN (`0 · inf` is NaN, which the skip does not spread) and a product
//! small enough to round to a negative zero. Without fused multiply-add,
//! and for outputs whose width is not a multiple of 16, the products are
//! left to matrixmultiply.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

/// Terms of the shared dimension summed on their own before being added to
/// the running total: matrixmultiply's `kc` for `f32`.
const RUN: usize = 256;

/// `out = x · w`, for `x` of shape `(n, k)`, `w` of shape `(k, m)` and `out`
/// of shape `(n, m)`.
pub(crate) fn product(
    x: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    mut out: ArrayViewMut2<'_, f32>,
) {
    debug_assert_eq!(x.ncols(), w.nrows());
    debug_assert_eq!(out.dim(), (x.nrows(), w.ncols()));
    #[cfg(target_arch = "x86_64")]
    if fused::available() && fused::suits(w.ncols()) {
        let (rows, inner, cols) = (x.nrows(), x.ncols(), w.ncols());
        if let (Some(x), Some(w), Some(out)) = (x.as_slice(), w.as_slice(), out.as_slice_mut()) {
            // SAFETY: `available` checked that the processor has AVX2 and FMA.
            unsafe { fused::product(x, rows, inner, w, cols, out) };
            return;
        }
    }
    general_mat_mul(1.0, &x, &w, 0.0, &mut out);
}

#[cfg(target_arch = "x86_64")]
mod fused {
    use std::arch::x86_64::*;
    use std::cell::RefCell;

    use super::RUN;

    thread_local! {
        /// The non-zero entries `(k, value)` of the current left row, reused.
        static ENTRIES: RefCell<Vec<(usize, f32)>> = const { RefCell::new(Vec::new()) };
    }

    /// Columns computed together at least: one output tile.
    const TILE: usize = 16;

    /// Whether products with `cols` output columns are computed here: whole
    /// tiles only (a ten-unit softmax layer is left to matrixmultiply).
    pub(super) fn suits(cols: usize) -> bool {
        cols > 0 && cols % TILE == 0
    }

    /// Whether the processor has AVX2 and fused multiply-add.
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// `out (rows x cols) = left (rows x inner) · right (inner x cols)`,
    /// with `right` and `out` row-major.
    ///
    /// # Safety
    ///
    /// The processor must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product(
        left: &[f32],
        rows: usize,
        inner: usize,
        right: &[f32],
        cols: usize,
        out: &mut [f32],
    ) {
        assert_eq!(left.len(), rows * inner, "left factor of {rows}x{inner}");
        assert_eq!(right.len(), inner * cols, "right factor of {inner}x{cols}");
        assert_eq!(out.len(), rows * cols, "output of {rows}x{cols}");
        debug_assert!(suits(cols));
        if inner == 0 {
            out.fill(0.0);
            return;
        }
        let runs = inner.div_ceil(RUN);
        // Taken out of the thread-local, so that the loops below are
        // compiled with this function's processor features (a closure's
        // are not).
        let mut entries = ENTRIES.take();
        for (row, out_row) in left.chunks_exact(inner).zip(out.chunks_exact_mut(cols)) {
            entries.clear();
            nonzero_in_row(row, &mut entries);
            let mut col = 0;
            while col + 64 <= cols {
                tile::<64>(&entries, runs, right, cols, col, out_row);
                col += 64;
            }
            while col + TILE <= cols {
                tile::<TILE>(&entries, runs, right, cols, col, out_row);
                col += TILE;
            }
        }
        ENTRIES.set(entries);
    }

    /// Appends `(k, row[k])` for every `row[k]` that is not zero (NaN
    /// included), in order, eight values per comparison.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn nonzero_in_row(row: &[f32], entries: &mut Vec<(usize, f32)>) {
        let chunks = row.chunks_exact(8);
        let rest = chunks.remainder();
        for (c, chunk) in chunks.enumerate() {
            // SAFETY: the chunk holds eight values.
            let v = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
            let differs = _mm256_cmp_ps::<_CMP_NEQ_UQ>(v, _mm256_setzero_ps());
            let mut mask = _mm256_movemask_ps(differs) as u32;
            while mask != 0 {
                let j = mask.trailing_zeros() as usize;
                entries.push((c * 8 + j, chunk[j]));
                mask &= mask - 1;
            }
        }
        let start = row.len() - rest.len();
        for (j, &v) in rest.iter().enumerate() {
            if v != 0.0 {
                entries.push((start + j, v));
            }
        }
    }

    /// Columns `col..col + T` of one output row: for each run of the shared
    /// dimension, the fused multiply-adds of its non-zero terms from zero,
    /// then the run's sum added to the output (the first run's sum is the
    /// output).
    #[inline(always)]
    fn tile<const T: usize>(
        entries: &[(usize, f32)],
        runs: usize,
        right: &[f32],
        cols: usize,
        col: usize,
        out_row: &mut [f32],
    ) {
        let out = &mut out_row[col..col + T];
        let mut start = 0;
        for run in 0..runs {
            let end = (run + 1) * RUN;
            let count = entries[start..].partition_point(|&(k, _)| k < end);
            let mut sum = [0.0_f32; T];
            for &(k, v) in &entries[start..start + count] {
                let weights: &[f32; T] = right[k * cols + col..k * cols + col + T]
                    .try_into()
                    .expect("a tile of T columns");
                for (s, &w) in sum.iter_mut().zip(weights) {
                    *s = v.mul_add(w, *s);
                }
            }
            start += count;
            if run == 0 {
                out.copy_from_slice(&sum);
            } else {
                for (o, s) in out.iter_mut().zip(sum) {
                    *o += s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};

    fn bits(a: &Array2<f32>) -> Vec<u32> {
        a.iter().map(|v| v.to_bits()).collect()
    }

    /// Values with many exact zeros, as digits and ReLU outputs have.
    fn sparse(rng: &mut impl Rng, rows: usize, cols: usize, zeros: f64) -> Array2<f32> {
        Array2::from_shape_simple_fn((rows, cols), || {
            if rng.random_bool(zeros) {
                0.0
            } else {
                rng.random_range(-2.0..2.0)
            }
        })
    }

    /// The product equals matrixmultiply's to the bit, for shared
    /// dimensions shorter and longer than a run, widths with and without
    /// remainders, and dense and sparse left factors.
    #[test]
    fn products_equal_matrixmultiply_to_the_bit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for &(n, k, m) in &[
            (32, 784, 128),
            (32, 128, 10),
            (1, 1, 1),
            (4, 0, 16),
            (5, 256, 33),
            (7, 257, 9),
            (300, 20, 41),
            (3, 600, 64),
        ] {
            for zeros in [0.0, 0.5, 0.8, 1.0] {
                let x = sparse(&mut rng, n, k, zeros);
                let w = sparse(&mut rng, k, m, 0.0);
                let mut ours = Array2::<f32>::from_elem((n, m), f32::NAN);
                product(x.view(), w.view(), ours.view_mut());
                let mut theirs = Array2::<f32>::zeros((n, m));
                general_mat_mul(1.0, &x, &w, 0.0, &mut theirs);
                assert_eq!(
                    bits(&ours),
                    bits(&theirs),
                    "x · w, {n}x{k}x{m}, zeros {zeros}"
                );
            }
        }
    }

    #[test]
    fn strided_operands_take_the_general_path() {
        let x = Array2::from_shape_fn((4, 6), |(i, j)| (i * 6 + j) as f32);
        let w = Array2::from_shape_fn((3, 5), |(i, j)| (i + 2 * j) as f32);
        // Every other column of x: not one contiguous slice.
        let x = x.slice(ndarray::s![.., ..;2]);
        let mut ours = Array2::<f32>::zeros((4, 5));
        product(x, w.view(), ours.view_mut());
        assert_eq!(ours, x.dot(&w));
    }
}
