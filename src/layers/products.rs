//! A dense layer's two large products, the forward `x · w` and the weight
//! gradient `xᵀ · g`, read from the operands where they lie and skipping the
//! terms whose input is zero.
//!
//! A digit is mostly blank paper: four fifths of an MNIST input are zeros,
//! and so are about half of a ReLU layer's outputs. Every term `0 · w` of
//! such a product adds nothing, so each row's non-zero entries are listed
//! once and only their terms are summed, straight from the row-major
//! weights: no copy of the weights into a packed buffer either.
//!
//! For the weight gradient, whose shared dimension is the batch, each input
//! feature gets a bit mask of the batch rows where it is not zero (32 rows
//! per word, found eight features at a time), and its gradient row sums the
//! terms of those rows only. A feature blank in the whole batch costs one
//! row of zeros.
//!
//! The sums are the ones matrixmultiply computes on processors with fused
//! multiply-add, to the bit: the shared dimension is cut into runs of 256
//! (its `kc` for `f32`), each run summed from zero by fused multiply-adds in
//! order, and the runs' sums added to the total in order. A skipped term
//! would have added `0 · w`, which changes no sum, with two exceptions that
//! finite weights of normal size never meet: a weight that is infinite or
//! NaN (`0 · inf` is NaN, which the skip does not spread) and a product
//! small enough to round to a negative zero. Where the processor has
//! AVX-512F the same loops run on sixteen lanes, with the same operations on
//! each value. Without fused multiply-add, and for outputs whose width is
//! not a multiple of 16, the products are left to matrixmultiply.

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
            // SAFETY: `available` checked that the processor has AVX2 and
            // FMA, and `wide` that it has AVX-512F.
            unsafe {
                if fused::wide() {
                    fused::product_wide(x, rows, inner, w, cols, out);
                } else {
                    fused::product(x, rows, inner, w, cols, out);
                }
            }
            return;
        }
    }
    general_mat_mul(1.0, &x, &w, 0.0, &mut out);
}

/// `out = xᵀ · g`, for `x` of shape `(n, k)`, `g` of shape `(n, m)` and
/// `out` of shape `(k, m)`: the weight gradient of a dense layer.
pub(crate) fn transposed_product(
    x: ArrayView2<'_, f32>,
    g: ArrayView2<'_, f32>,
    mut out: ArrayViewMut2<'_, f32>,
) {
    debug_assert_eq!(x.nrows(), g.nrows());
    debug_assert_eq!(out.dim(), (x.ncols(), g.ncols()));
    #[cfg(target_arch = "x86_64")]
    if fused::available() && fused::suits(g.ncols()) {
        let (batch, features, cols) = (x.nrows(), x.ncols(), g.ncols());
        if let (Some(x), Some(g), Some(out)) = (x.as_slice(), g.as_slice(), out.as_slice_mut()) {
            // SAFETY: `available` checked that the processor has AVX2 and
            // FMA, and `wide` that it has AVX-512F.
            unsafe {
                if fused::wide() {
                    fused::transposed_product_wide(x, batch, features, g, cols, out);
                } else {
                    fused::transposed_product(x, batch, features, g, cols, out);
                }
            }
            return;
        }
    }
    general_mat_mul(1.0, &x.t(), &g, 0.0, &mut out);
}

#[cfg(target_arch = "x86_64")]
mod fused {
    use std::arch::x86_64::*;
    use std::cell::RefCell;

    use super::RUN;

    thread_local! {
        /// The non-zero entries `(k, value)` of the current left row, reused.
        static ENTRIES: RefCell<Vec<(usize, f32)>> = const { RefCell::new(Vec::new()) };
        /// The row masks of the left factor's columns, for `xᵀ · g`, reused.
        static MASKS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }

    /// Batch rows per mask word.
    const BLOCK: usize = 32;

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

    /// Whether the processor has AVX-512F too: the same loops then run on
    /// sixteen lanes, and 128 output columns make one tile.
    pub(super) fn wide() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
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
        // SAFETY: as this function's.
        unsafe { product_in::<false>(left, rows, inner, right, cols, out) }
    }

    /// [`product`] on AVX-512F's registers of sixteen lanes.
    ///
    /// # Safety
    ///
    /// The processor must support AVX2, FMA and AVX-512F.
    #[target_feature(enable = "avx2,fma,avx512f")]
    pub(super) unsafe fn product_wide(
        left: &[f32],
        rows: usize,
        inner: usize,
        right: &[f32],
        cols: usize,
        out: &mut [f32],
    ) {
        // SAFETY: as this function's.
        unsafe { product_in::<true>(left, rows, inner, right, cols, out) }
    }

    /// The body of [`product`] and [`product_wide`], compiled with the
    /// processor features of each.
    #[inline(always)]
    unsafe fn product_in<const WIDE: bool>(
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
            // SAFETY: the caller's processor has AVX2 and FMA.
            unsafe { nonzero_in_row(row, &mut entries) };
            let mut col = 0;
            while WIDE && col + 128 <= cols {
                tile::<128>(&entries, runs, right, cols, col, out_row);
                col += 128;
            }
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

    /// `out (features x cols) = leftᵀ · right`, for `left` row-major
    /// `(batch, features)` and `right` row-major `(batch, cols)`.
    ///
    /// # Safety
    ///
    /// The processor must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn transposed_product(
        left: &[f32],
        batch: usize,
        features: usize,
        right: &[f32],
        cols: usize,
        out: &mut [f32],
    ) {
        // SAFETY: as this function's.
        unsafe { transposed_in::<false>(left, batch, features, right, cols, out) }
    }

    /// [`transposed_product`] on AVX-512F's registers of sixteen lanes.
    ///
    /// # Safety
    ///
    /// The processor must support AVX2, FMA and AVX-512F.
    #[target_feature(enable = "avx2,fma,avx512f")]
    pub(super) unsafe fn transposed_product_wide(
        left: &[f32],
        batch: usize,
        features: usize,
        right: &[f32],
        cols: usize,
        out: &mut [f32],
    ) {
        // SAFETY: as this function's.
        unsafe { transposed_in::<true>(left, batch, features, right, cols, out) }
    }

    /// The body of [`transposed_product`] and [`transposed_product_wide`],
    /// compiled with the processor features of each.
    #[inline(always)]
    unsafe fn transposed_in<const WIDE: bool>(
        left: &[f32],
        batch: usize,
        features: usize,
        right: &[f32],
        cols: usize,
        out: &mut [f32],
    ) {
        assert_eq!(
            left.len(),
            batch * features,
            "left factor of {batch}x{features}"
        );
        assert_eq!(right.len(), batch * cols, "right factor of {batch}x{cols}");
        assert_eq!(out.len(), features * cols, "output of {features}x{cols}");
        debug_assert!(suits(cols));
        if batch == 0 {
            out.fill(0.0);
            return;
        }
        let blocks = batch.div_ceil(BLOCK);
        let mut masks = MASKS.take();
        // SAFETY: the caller's processor has AVX2 and FMA.
        unsafe { row_masks(left, batch, features, &mut masks) };
        for (feature, out_row) in out.chunks_exact_mut(cols).enumerate() {
            let column = Column {
                left,
                features,
                feature,
                masks: &masks,
                blocks,
            };
            let mut col = 0;
            // SAFETY: the sizes were asserted above, `feature < features`,
            // each tile ends within `cols`, and `row_masks` set bits for
            // rows of the batch only.
            unsafe {
                while WIDE && col + 128 <= cols {
                    column.tile::<128>(right, cols, col, out_row);
                    col += 128;
                }
                while col + 64 <= cols {
                    column.tile::<64>(right, cols, col, out_row);
                    col += 64;
                }
                while col + TILE <= cols {
                    column.tile::<TILE>(right, cols, col, out_row);
                    col += TILE;
                }
            }
        }
        MASKS.set(masks);
    }

    /// Fills `masks[b * features + f]` with the rows `r` of block `b` (rows
    /// `32 b..32 b + 32`) where `left[r][f]` is not zero (NaN included), as
    /// bit `r - 32 b`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row_masks(left: &[f32], batch: usize, features: usize, masks: &mut Vec<u32>) {
        let blocks = batch.div_ceil(BLOCK);
        masks.clear();
        masks.resize(blocks * features, 0);
        for block in 0..blocks {
            let rows = (block * BLOCK..batch.min((block + 1) * BLOCK)).enumerate();
            let block_masks = &mut masks[block * features..(block + 1) * features];
            let mut f = 0;
            while f + 8 <= features {
                let mut acc = _mm256_setzero_si256();
                for (bit, r) in rows.clone() {
                    let values: &[f32; 8] = left[r * features + f..r * features + f + 8]
                        .try_into()
                        .expect("eight values");
                    // SAFETY: `values` holds eight floats.
                    let v = unsafe { _mm256_loadu_ps(values.as_ptr()) };
                    let differs = _mm256_cmp_ps::<_CMP_NEQ_UQ>(v, _mm256_setzero_ps());
                    let bit = _mm256_set1_epi32((1_u32 << bit) as i32);
                    acc = _mm256_or_si256(acc, _mm256_and_si256(_mm256_castps_si256(differs), bit));
                }
                let out: &mut [u32; 8] = (&mut block_masks[f..f + 8])
                    .try_into()
                    .expect("eight masks");
                // SAFETY: `out` holds eight words.
                unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), acc) };
                f += 8;
            }
            for (f, mask) in block_masks.iter_mut().enumerate().skip(f) {
                for (bit, r) in rows.clone() {
                    if left[r * features + f] != 0.0 {
                        *mask |= 1 << bit;
                    }
                }
            }
        }
    }

    /// One column of the left factor of `xᵀ · g`, with its row masks.
    struct Column<'a> {
        left: &'a [f32],
        features: usize,
        feature: usize,
        masks: &'a [u32],
        blocks: usize,
    }

    impl Column<'_> {
        /// Columns `col..col + T` of the output row of this feature, summed
        /// by runs of the batch as in [`tile`].
        ///
        /// # Safety
        ///
        /// `left` holds `batch x features` values, `right` holds
        /// `batch x cols`, `feature < features`, `col + T <= cols`, and the
        /// masks (made by [`row_masks`]) name rows below `batch` only.
        #[inline(always)]
        unsafe fn tile<const T: usize>(
            &self,
            right: &[f32],
            cols: usize,
            col: usize,
            out_row: &mut [f32],
        ) {
            let out = &mut out_row[col..col + T];
            let per_run = RUN / BLOCK;
            for run in 0..self.blocks.div_ceil(per_run) {
                let mut sum = [0.0_f32; T];
                for block in run * per_run..self.blocks.min((run + 1) * per_run) {
                    let mut mask = self.masks[block * self.features + self.feature];
                    while mask != 0 {
                        let r = block * BLOCK + mask.trailing_zeros() as usize;
                        mask &= mask - 1;
                        debug_assert!((r + 1) * self.features <= self.left.len());
                        debug_assert!(r * cols + col + T <= right.len());
                        // SAFETY: `r` is a row of the batch, so both reads
                        // lie inside `left` and `right` (see `# Safety`).
                        let (v, weights) = unsafe {
                            let v = *self.left.get_unchecked(r * self.features + self.feature);
                            let weights = &*right.as_ptr().add(r * cols + col).cast::<[f32; T]>();
                            (v, weights)
                        };
                        for (s, &w) in sum.iter_mut().zip(weights) {
                            *s = v.mul_add(w, *s);
                        }
                    }
                }
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

    /// Both products equal matrixmultiply's to the bit, for shared
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
            (33, 9, 16),
            (64, 784, 128),
            (520, 13, 48),
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

                let g = sparse(&mut rng, n, m, 0.3);
                let mut ours = Array2::<f32>::from_elem((k, m), f32::NAN);
                transposed_product(x.view(), g.view(), ours.view_mut());
                let mut theirs = Array2::<f32>::zeros((k, m));
                general_mat_mul(1.0, &x.t(), &g, 0.0, &mut theirs);
                assert_eq!(
                    bits(&ours),
                    bits(&theirs),
                    "xᵀ · g, {n}x{k}x{m}, zeros {zeros}"
                );
                assert_eq!(
                    bits(&ours),
                    bits(&straightforward_transposed(&x, &g)),
                    "xᵀ · g against in-order sums, {n}x{k}x{m}, zeros {zeros}"
                );
            }
        }
    }

    /// `xᵀ · g` computed the plain way: for each output, the fused
    /// multiply-adds of every term in order from zero, by runs of 256 rows
    /// whose sums are added in order.
    fn straightforward_transposed(x: &Array2<f32>, g: &Array2<f32>) -> Array2<f32> {
        Array2::from_shape_fn((x.ncols(), g.ncols()), |(i, j)| {
            let mut total = 0.0_f32;
            for (run, rows) in (0..x.nrows()).collect::<Vec<_>>().chunks(RUN).enumerate() {
                let mut sum = 0.0_f32;
                for &r in rows {
                    sum = x[[r, i]].mul_add(g[[r, j]], sum);
                }
                total = if run == 0 { sum } else { total + sum };
            }
            total
        })
    }

    /// On a processor with AVX-512F, the products take the sixteen-lane
    /// kernels; the eight-lane ones, which other processors take, give the
    /// same bits.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn eight_and_sixteen_lane_kernels_agree_to_the_bit() {
        if !fused::available() {
            return;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for &(n, k, m) in &[(32, 784, 128), (5, 256, 144), (300, 20, 208), (3, 600, 64)] {
            let x = sparse(&mut rng, n, k, 0.7);
            let w = sparse(&mut rng, k, m, 0.0);
            let g = sparse(&mut rng, n, m, 0.3);
            let mut dispatched = Array2::<f32>::zeros((n, m));
            product(x.view(), w.view(), dispatched.view_mut());
            let mut narrow = Array2::<f32>::from_elem((n, m), f32::NAN);
            let (xs, ws, gs) = (
                x.as_slice().unwrap(),
                w.as_slice().unwrap(),
                g.as_slice().unwrap(),
            );
            // SAFETY: `available` checked for AVX2 and FMA.
            unsafe { fused::product(xs, n, k, ws, m, narrow.as_slice_mut().unwrap()) };
            assert_eq!(bits(&narrow), bits(&dispatched), "x · w, {n}x{k}x{m}");
            let mut dispatched = Array2::<f32>::zeros((k, m));
            transposed_product(x.view(), g.view(), dispatched.view_mut());
            let mut narrow = Array2::<f32>::from_elem((k, m), f32::NAN);
            // SAFETY: as above.
            unsafe { fused::transposed_product(xs, n, k, gs, m, narrow.as_slice_mut().unwrap()) };
            assert_eq!(bits(&narrow), bits(&dispatched), "xᵀ · g, {n}x{k}x{m}");
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
        let g = Array2::from_shape_fn((4, 16), |(i, j)| (i * 3 + j) as f32);
        let mut ours = Array2::<f32>::zeros((3, 16));
        transposed_product(x, g.view(), ours.view_mut());
        assert_eq!(ours, x.t().dot(&g));
    }
}
