//! The geometry of one transform: the inverse affine map, bilinear sampling
//! and the fill modes, computed the way Keras hands them to
//! `scipy.ndimage.affine_transform`.

use serde::{Deserialize, Serialize};

use super::element::Element;

/// How to fill the points that the inverse map sends outside the input.
///
/// Shown on a row `a b c d`, with the image between the bars:
///
/// ```text
/// Nearest    a a a a | a b c d | d d d d
/// Constant   k k k k | a b c d | k k k k    (k = cval)
/// Reflect    d c b a | a b c d | d c b a
/// Wrap       a b c d | a b c d | a b c d
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillMode {
    /// The nearest edge pixel (the default, as in Keras).
    #[default]
    Nearest,
    /// The generator's `cval` wherever a sample point leaves the image.
    Constant,
    /// The image mirrored about its edges.
    Reflect,
    /// The image repeated, with a period of its own size.
    Wrap,
}

impl FillMode {
    /// The name Keras gives the mode: `"nearest"`, `"constant"`, ...
    pub fn keras_name(self) -> &'static str {
        match self {
            FillMode::Nearest => "nearest",
            FillMode::Constant => "constant",
            FillMode::Reflect => "reflect",
            FillMode::Wrap => "wrap",
        }
    }
}

/// The parameters of one transform, with the meaning Keras gives them in
/// `ImageDataGenerator.apply_transform`.
///
/// The identity is [`TransformParams::default()`]: angles and shifts 0,
/// zoom factors 1, no flip. Missing fields take those values when read
/// with serde, as missing keys do in Keras.
///
/// - `theta`: rotation in degrees; positive turns the content
///   counter-clockwise as displayed (row 0 at the top).
/// - `tx`: shift along the columns in pixels; positive moves the content
///   left: `output(r, c) = input(r, c + tx)`.
/// - `ty`: shift along the rows in pixels; positive moves the content up:
///   `output(r, c) = input(r + ty, c)`.
/// - `shear`: shear angle in degrees, as Keras applies it.
/// - `zx`, `zy`: zoom factors of the sampling grid along the columns and
///   the rows; above 1 the content gets smaller, below 1 larger.
/// - `flip_horizontal`, `flip_vertical`: mirror the columns or the rows,
///   after the affine part.
/// - `channel_shift_intensity`: added to every value, which is then
///   clipped to the range the image had (`None`: no shift).
/// - `brightness`: a brightness factor, as Keras applies it through an
///   8-bit picture (`None`: unchanged). See
///   [`ImageDataGenerator::brightness_range`](super::ImageDataGenerator::brightness_range).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransformParams {
    /// Rotation angle in degrees.
    pub theta: f64,
    /// Shift along the columns, in pixels.
    pub tx: f64,
    /// Shift along the rows, in pixels.
    pub ty: f64,
    /// Shear angle in degrees.
    pub shear: f64,
    /// Zoom factor along the columns.
    pub zx: f64,
    /// Zoom factor along the rows.
    pub zy: f64,
    /// Whether to mirror the columns.
    pub flip_horizontal: bool,
    /// Whether to mirror the rows.
    pub flip_vertical: bool,
    /// A shift of every value, clipped to the image's range.
    pub channel_shift_intensity: Option<f64>,
    /// A brightness factor.
    pub brightness: Option<f64>,
}

impl Default for TransformParams {
    fn default() -> Self {
        TransformParams {
            theta: 0.0,
            tx: 0.0,
            ty: 0.0,
            shear: 0.0,
            zx: 1.0,
            zy: 1.0,
            flip_horizontal: false,
            flip_vertical: false,
            channel_shift_intensity: None,
            brightness: None,
        }
    }
}

impl TransformParams {
    /// Whether the parameters leave every image unchanged.
    pub fn is_identity(&self) -> bool {
        !self.has_affine_part()
            && !self.flip_horizontal
            && !self.flip_vertical
            && self.channel_shift_intensity.is_none()
            && self.brightness.is_none()
    }

    /// Whether Keras would build a transform matrix for these parameters.
    fn has_affine_part(&self) -> bool {
        self.theta != 0.0
            || self.tx != 0.0
            || self.ty != 0.0
            || self.shear != 0.0
            || self.zx != 1.0
            || self.zy != 1.0
    }
}

type Mat3 = [[f64; 3]; 3];

fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, value) in row.iter_mut().enumerate() {
            *value = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
        }
    }
    out
}

/// The inverse map from output `(row, col)` to input `(row, col)`:
/// `source = matrix @ [row, col] + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct InverseMap {
    matrix: [[f64; 2]; 2],
    offset: [f64; 2],
}

impl InverseMap {
    /// Builds the map Keras builds, or `None` when it builds none (no
    /// rotation, shift, shear or zoom).
    ///
    /// Keras composes `rotation @ shift @ shear @ zoom` in `(x, y)` order
    /// (x along the columns), conjugates it with a translation to the
    /// centre, then swaps the axes into `(row, col)` order for scipy.
    pub(crate) fn new(params: &TransformParams, height: usize, width: usize) -> Option<Self> {
        if !params.has_affine_part() {
            return None;
        }
        let mut t: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        if params.theta != 0.0 {
            let angle = params.theta * (std::f64::consts::PI / 180.0);
            let (sin, cos) = angle.sin_cos();
            t = [[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]];
        }
        if params.tx != 0.0 || params.ty != 0.0 {
            let shift = [
                [1.0, 0.0, params.tx],
                [0.0, 1.0, params.ty],
                [0.0, 0.0, 1.0],
            ];
            t = mat_mul(&t, &shift);
        }
        if params.shear != 0.0 {
            let angle = params.shear * (std::f64::consts::PI / 180.0);
            let (sin, cos) = angle.sin_cos();
            let shear = [[1.0, -sin, 0.0], [0.0, cos, 0.0], [0.0, 0.0, 1.0]];
            t = mat_mul(&t, &shear);
        }
        if params.zx != 1.0 || params.zy != 1.0 {
            let zoom = [
                [params.zx, 0.0, 0.0],
                [0.0, params.zy, 0.0],
                [0.0, 0.0, 1.0],
            ];
            t = mat_mul(&t, &zoom);
        }

        // The centre of the image in (x, y) order: x runs along the columns.
        let centre_x = width as f64 / 2.0 - 0.5;
        let centre_y = height as f64 / 2.0 - 0.5;
        let to_centre = [[1.0, 0.0, centre_x], [0.0, 1.0, centre_y], [0.0, 0.0, 1.0]];
        let from_centre = [
            [1.0, 0.0, -centre_x],
            [0.0, 1.0, -centre_y],
            [0.0, 0.0, 1.0],
        ];
        let t = mat_mul(&mat_mul(&to_centre, &t), &from_centre);

        Some(InverseMap {
            matrix: [[t[1][1], t[1][0]], [t[0][1], t[0][0]]],
            offset: [t[1][2], t[0][2]],
        })
    }
}

/// The two neighbours of a sample point along one axis, with their weights.
#[derive(Debug, Clone, Copy)]
struct Taps {
    first: usize,
    second: usize,
    first_weight: f64,
    second_weight: f64,
}

impl Taps {
    fn new(first: usize, second: usize, first_weight: f64) -> Self {
        Taps {
            first,
            second,
            first_weight,
            second_weight: 1.0 - first_weight,
        }
    }
}

/// Where the sample point `coordinate` reads along an axis of `len` pixels,
/// or `None` when it takes the constant fill value.
///
/// The coordinate is first folded back into the image as scipy's
/// `map_coordinate` does for the mode (not for `Nearest`, whose neighbours
/// are clamped instead), then split into two neighbours whose indices are
/// folded again when they fall off the edge.
#[inline]
fn axis_taps(coordinate: f64, len: usize, fill: FillMode) -> Option<Taps> {
    // Inside the image, with a neighbour on each side: nothing to fold, and
    // truncation is the floor.
    if coordinate >= 0.0 && coordinate < (len - 1) as f64 {
        let start = coordinate as usize;
        let first_weight = 1.0 - (coordinate - start as f64);
        return Some(Taps::new(start, start + 1, first_weight));
    }
    edge_taps(coordinate, len, fill)
}

/// [`axis_taps`] for a point near or beyond an edge.
fn edge_taps(coordinate: f64, len: usize, fill: FillMode) -> Option<Taps> {
    if coordinate.is_nan() {
        return None;
    }
    let folded = match fill {
        FillMode::Nearest => coordinate,
        _ => fold_coordinate(coordinate, len, fill),
    };
    if fill != FillMode::Nearest && folded <= -1.0 {
        return None;
    }
    let floor = folded.floor();
    let first_weight = 1.0 - (folded - floor);
    let start = floor as i64;
    let n = len as i64;
    let taps = if start >= 0 && start < n - 1 {
        Taps::new(start as usize, start as usize + 1, first_weight)
    } else {
        let second = fold_index(start.saturating_add(1), n, fill);
        Taps::new(fold_index(start, n, fill), second, first_weight)
    };
    Some(taps)
}

/// Folds a coordinate that lies outside `[0, len - 1]` back inside, or to
/// -1 (the constant value) for `Constant`.
fn fold_coordinate(x: f64, len: usize, fill: FillMode) -> f64 {
    let n = len as f64;
    if x >= 0.0 && x <= n - 1.0 {
        return x;
    }
    if len <= 1 {
        return if fill == FillMode::Constant {
            -1.0
        } else {
            0.0
        };
    }
    match fill {
        FillMode::Nearest => x.clamp(0.0, n - 1.0),
        FillMode::Constant => -1.0,
        FillMode::Reflect => {
            let period = 2.0 * n;
            if x < 0.0 {
                let x = if x < -period {
                    period * (-x / period).trunc() + x
                } else {
                    x
                };
                if x < -n {
                    x + period
                } else {
                    // Keep a point just below zero from landing on -1 exactly.
                    (if x > -1e-15 { 1e-15 } else { -x }) - 1.0
                }
            } else {
                let x = x - period * (x / period).trunc();
                if x >= n {
                    period - x - 1.0
                } else {
                    x
                }
            }
        }
        FillMode::Wrap => {
            if x < 0.0 {
                x + n * (((-1.0 - x) / n).trunc() + 1.0)
            } else {
                x - n * (x / n).trunc()
            }
        }
    }
}

/// Folds a neighbour index that lies outside `0..n` back inside.
///
/// `Constant` folds as a mirror without repeating the edge; the weight of
/// such a neighbour is always zero, since the point itself lies inside.
fn fold_index(i: i64, n: i64, fill: FillMode) -> usize {
    if n <= 1 {
        return 0;
    }
    let folded = match fill {
        FillMode::Nearest => i.clamp(0, n - 1),
        FillMode::Wrap => i.rem_euclid(n),
        FillMode::Reflect => {
            let m = i.rem_euclid(2 * n);
            if m >= n {
                2 * n - 1 - m
            } else {
                m
            }
        }
        FillMode::Constant => {
            let period = 2 * n - 2;
            let m = i.rem_euclid(period);
            if m >= n {
                period - m
            } else {
                m
            }
        }
    };
    folded as usize
}

/// Writes the transformed `source` image (`height x width x channels`,
/// row-major) into `out`, which has the same length.
///
/// Every output value is scipy's sum of `(v * w_row) * w_col` over the four
/// neighbours in row-major order, in `f64`, rounded once to `f32`.
///
/// Output pixels that can only read zeros are written as the `+0.0` that
/// sum gives without computing it (see [`Blank`]).
pub(crate) fn warp<E: Element>(
    source: &[E],
    shape: [usize; 3],
    params: &TransformParams,
    fill: FillMode,
    cval: f32,
    out: &mut [f32],
) {
    warp_with(source, shape, params, fill, cval, out, true);
}

/// [`warp`] computing every output pixel, blank or not.
#[cfg(test)]
pub(crate) fn warp_full<E: Element>(
    source: &[E],
    shape: [usize; 3],
    params: &TransformParams,
    fill: FillMode,
    cval: f32,
    out: &mut [f32],
) {
    warp_with(source, shape, params, fill, cval, out, false);
}

fn warp_with<E: Element>(
    source: &[E],
    shape: [usize; 3],
    params: &TransformParams,
    fill: FillMode,
    cval: f32,
    out: &mut [f32],
    skip_blank: bool,
) {
    let [height, width, channels] = shape;
    debug_assert_eq!(source.len(), height * width * channels);
    debug_assert_eq!(out.len(), source.len());
    if source.is_empty() {
        return;
    }
    let flipped = params.flip_horizontal || params.flip_vertical;
    let Some(map) = InverseMap::new(params, height, width) else {
        if flipped {
            copy_flipped(source, shape, params, out);
        } else {
            for (value, &from) in out.iter_mut().zip(source) {
                *value = from.to_f32();
            }
        }
        return;
    };
    let blank = if skip_blank && map.is_moderate() {
        Blank::new(source, shape, fill, cval)
    } else {
        None
    };

    #[cfg(target_arch = "x86_64")]
    if channels == 1
        && !flipped
        && width >= avx2::LANES
        && source.len() <= i32::MAX as usize
        && std::arch::is_x86_feature_detected!("avx2")
    {
        // SAFETY: the processor supports AVX2, checked just above.
        unsafe { avx2::warp_plain(source, [height, width], &map, fill, cval, blank, out) };
        return;
    }
    warp_rows(source, shape, params, &map, fill, cval, blank.as_ref(), out);
}

/// Where the non-zero pixels of an image lie, as far as the output needs:
/// sample points outside the box these bounds enclose read only zeros.
///
/// Every neighbour that scipy's bilinear sum reads is then `+0.0` or
/// `-0.0` with a finite weight, and the sum, which starts at `+0.0`, is
/// `+0.0`: such output pixels are written without being computed.
///
/// The box is that of the pixels that are not zero (NaN counts as not zero)
/// in any channel, widened by the one neighbour on each side that a sample
/// point reads. It serves only where no point outside the image reads from
/// inside the box: `Nearest` when the non-zero pixels keep off the edge of
/// the image, and `Constant` with a `cval` of `+0.0`.
#[derive(Debug, Clone, Copy)]
struct Blank {
    /// Sample points with a row below this read zeros only.
    row_low: f64,
    /// Sample points with a row at or above this read zeros only.
    row_high: f64,
    /// As `row_low`, along the columns.
    col_low: f64,
    /// As `row_high`, along the columns.
    col_high: f64,
}

impl Blank {
    /// The bounds for `source`, or `None` when they cannot serve.
    fn new<E: Element>(
        source: &[E],
        [height, width, channels]: [usize; 3],
        fill: FillMode,
        cval: f32,
    ) -> Option<Self> {
        match fill {
            FillMode::Nearest => {}
            FillMode::Constant if cval.to_bits() == 0 => {}
            _ => return None,
        }
        let line = width * channels;
        let any = |values: &[E]| values.iter().fold(0, |bits, v| bits | v.nonzero_bits()) != 0;
        let rows = |row: usize| &source[row * line..(row + 1) * line];
        let Some(first_row) = (0..height).find(|&row| any(rows(row))) else {
            // Every point reads zeros.
            return Some(Blank {
                row_low: f64::INFINITY,
                row_high: f64::INFINITY,
                col_low: f64::INFINITY,
                col_high: f64::INFINITY,
            });
        };
        let last_row = (first_row..height)
            .rev()
            .find(|&row| any(rows(row)))
            .unwrap_or(first_row);
        // Values `first..last` of the rows hold every non-zero value.
        let (mut first, mut last) = (line, 0);
        for row in first_row..=last_row {
            let values = rows(row);
            let nonzero = |v: &E| v.nonzero_bits() != 0;
            if let Some(at) = values[..first].iter().position(nonzero) {
                first = at;
            }
            if let Some(at) = values[last..].iter().rposition(nonzero) {
                last += at + 1;
            }
        }
        let (first_col, last_col) = (first / channels, (last - 1) / channels);
        if fill == FillMode::Nearest
            && (first_row == 0 || last_row + 1 >= height || first_col == 0 || last_col + 1 >= width)
        {
            // Points off the edge read the edge pixels, which are not zero.
            return None;
        }
        let high = |last: usize, len: usize| match fill {
            // A point on the last row or column reads the one before it
            // too, with weight 0: keep it when that one may be NaN.
            FillMode::Constant if last + 2 >= len => len as f64,
            _ => (last + 1) as f64,
        };
        Some(Blank {
            row_low: first_row as f64 - 1.0,
            row_high: high(last_row, height),
            col_low: first_col as f64 - 1.0,
            col_high: high(last_col, width),
        })
    }

    /// The columns `first..last` of an output row outside which every
    /// output pixel is `+0.0`, for the row whose sample point at column
    /// `col` is `(row_base + col * row_step, col_base + col * col_step)`.
    ///
    /// Each coordinate, computed so, is monotonic in `col` (rounding is),
    /// so the columns whose point lies inside the bounds are one run,
    /// found from a guess by checking the points on either side of its
    /// ends. The map must keep every coordinate finite.
    #[inline(always)]
    fn columns(
        &self,
        width: usize,
        (row_base, row_step): (f64, f64),
        (col_base, col_step): (f64, f64),
    ) -> (usize, usize) {
        let (first_a, last_a) = inside(width, row_base, row_step, self.row_low, self.row_high);
        let (first_b, last_b) = inside(width, col_base, col_step, self.col_low, self.col_high);
        let first = first_a.max(first_b);
        (first, last_a.min(last_b).max(first))
    }
}

/// The run of `col` in `0..width` where `low <= base + col * step < high`,
/// as `(first, last)`; `first <= last` unless the run is empty.
#[inline(always)]
fn inside(width: usize, base: f64, step: f64, low: f64, high: f64) -> (usize, usize) {
    let at = |col: usize| base + col as f64 * step;
    if step >= 0.0 {
        (
            first_true(width, (low - base) / step, |col| at(col) >= low),
            first_true(width, (high - base) / step, |col| at(col) >= high),
        )
    } else {
        (
            first_true(width, (high - base) / step, |col| at(col) < high),
            first_true(width, (low - base) / step, |col| at(col) < low),
        )
    }
}

/// The first `col` in `0..width` where `holds`, which is false and then
/// true along the columns, is true (`width` if none), searched from near
/// `guess`.
#[inline(always)]
fn first_true(width: usize, guess: f64, holds: impl Fn(usize) -> bool) -> usize {
    // `as` saturates: NaN and negative guesses start at 0.
    let mut col = (guess.ceil() as usize).min(width);
    while col > 0 && holds(col - 1) {
        col -= 1;
    }
    while col < width && !holds(col) {
        col += 1;
    }
    col
}

impl InverseMap {
    /// Whether every coordinate of every image size stays finite: the
    /// entries are small enough that no sum or product overflows.
    fn is_moderate(&self) -> bool {
        let [[m00, m01], [m10, m11]] = self.matrix;
        [m00, m01, m10, m11, self.offset[0], self.offset[1]]
            .iter()
            .all(|x| x.abs() < 1e100)
    }
}

/// The identity with flips: each pixel moved to its mirrored place.
fn copy_flipped<E: Element>(
    source: &[E],
    shape: [usize; 3],
    params: &TransformParams,
    out: &mut [f32],
) {
    let [height, width, channels] = shape;
    for row in 0..height {
        for col in 0..width {
            let from = (row * width + col) * channels;
            let to = flipped_index(shape, params, row, col);
            for k in 0..channels {
                out[to + k] = source[from + k].to_f32();
            }
        }
    }
}

/// Where output pixel `(row, col)` goes once the flips are applied.
#[inline(always)]
fn flipped_index(shape: [usize; 3], params: &TransformParams, row: usize, col: usize) -> usize {
    let [height, width, channels] = shape;
    let row = if params.flip_vertical {
        height - 1 - row
    } else {
        row
    };
    let col = if params.flip_horizontal {
        width - 1 - col
    } else {
        col
    };
    (row * width + col) * channels
}

/// [`warp`] one pixel at a time, for any number of channels and flips.
#[allow(clippy::too_many_arguments)]
fn warp_rows<E: Element>(
    source: &[E],
    shape: [usize; 3],
    params: &TransformParams,
    map: &InverseMap,
    fill: FillMode,
    cval: f32,
    blank: Option<&Blank>,
    out: &mut [f32],
) {
    let [height, width, channels] = shape;
    let [[m00, m01], [m10, m11]] = map.matrix;
    for row in 0..height {
        // scipy sums `offset + row * m[.][0] + col * m[.][1]` in this order.
        let row_base = map.offset[0] + row as f64 * m00;
        let col_base = map.offset[1] + row as f64 * m10;
        let point = |col: usize| (row_base + col as f64 * m01, col_base + col as f64 * m11);
        let (first, last) = blank.map_or((0, width), |blank| {
            blank.columns(width, (row_base, m01), (col_base, m11))
        });
        for col in (0..first).chain(last..width) {
            let to = flipped_index(shape, params, row, col);
            out[to..to + channels].fill(0.0);
        }
        for col in first..last {
            let to = flipped_index(shape, params, row, col);
            sample(source, shape, point(col), fill, cval, &mut out[to..]);
        }
    }
}

/// Writes the value(s) at the sample point `(row, col)` of `source` to the
/// first `channels` entries of `out`.
#[inline(always)]
fn sample<E: Element>(
    source: &[E],
    shape: [usize; 3],
    (source_row, source_col): (f64, f64),
    fill: FillMode,
    cval: f32,
    out: &mut [f32],
) {
    let [height, width, channels] = shape;
    let taps = (
        axis_taps(source_row, height, fill),
        axis_taps(source_col, width, fill),
    );
    let (Some(rows), Some(cols)) = taps else {
        out[..channels].fill(cval);
        return;
    };
    let (top, bottom) = (rows.first * width, rows.second * width);
    let corners = [
        (top + cols.first) * channels,
        (top + cols.second) * channels,
        (bottom + cols.first) * channels,
        (bottom + cols.second) * channels,
    ];
    for (k, value) in out[..channels].iter_mut().enumerate() {
        *value = bilinear(source, corners.map(|i| i + k), &rows, &cols);
    }
}

/// The vectorised path: one channel, no flips, four columns at a time.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::cell::RefCell;

    use super::{sample, Blank, Element, FillMode, InverseMap};

    /// Columns computed together.
    pub(super) const LANES: usize = 4;

    thread_local! {
        /// The image being warped, as `f64`, reused between calls.
        static PIXELS: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
    }

    /// [`super::warp`] of a one-channel image without flips.
    ///
    /// With `blank`, each row computes the columns that
    /// [`Blank::columns`] leaves, widened to whole groups where the row
    /// has room, and writes `+0.0` to the others. Where the four sample points of a group of columns all have their
    /// four neighbours inside the image, the group is computed in AVX2
    /// lanes with the scalar path's operations in the scalar path's order
    /// (multiplications and additions, no fused multiply-add), so every
    /// value is the same to the bit; other points take the scalar path.
    ///
    /// # Safety
    ///
    /// The processor must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn warp_plain<E: Element>(
        source: &[E],
        [height, width]: [usize; 2],
        map: &InverseMap,
        fill: FillMode,
        cval: f32,
        blank: Option<Blank>,
        out: &mut [f32],
    ) {
        PIXELS.with_borrow_mut(|pixels| {
            pixels.resize(source.len(), 0.0);
            // SAFETY: AVX2 is enabled in this function's caller.
            unsafe {
                convert(source, pixels);
                warp_pixels(source, pixels, [height, width], map, fill, cval, blank, out);
            }
        });
    }

    /// Copies `source` into `pixels` (of the same length) as `f64`.
    #[target_feature(enable = "avx2")]
    unsafe fn convert<E: Element>(source: &[E], pixels: &mut [f64]) {
        for (pixel, value) in pixels.iter_mut().zip(source) {
            *pixel = value.to_f64();
        }
    }

    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn warp_pixels<E: Element>(
        source: &[E],
        pixels: &[f64],
        [height, width]: [usize; 2],
        map: &InverseMap,
        fill: FillMode,
        cval: f32,
        blank: Option<Blank>,
        out: &mut [f32],
    ) {
        let shape = [height, width, 1];
        let [[m00, m01], [m10, m11]] = map.matrix;
        let (last_row, last_col) = ((height - 1) as f64, (width - 1) as f64);
        let zero = _mm256_setzero_pd();
        let one = _mm256_set1_pd(1.0);
        let (below_row, below_col) = (_mm256_set1_pd(last_row), _mm256_set1_pd(last_col));
        let (step_row, step_col) = (_mm256_set1_pd(m01), _mm256_set1_pd(m11));
        let stride = _mm_set1_epi32(width as i32);
        let next = _mm_set1_epi32(1);
        let lane_offsets = _mm256_set_pd(3.0, 2.0, 1.0, 0.0);
        for row in 0..height {
            let row_base = map.offset[0] + row as f64 * m00;
            let col_base = map.offset[1] + row as f64 * m10;
            let (row_base_v, col_base_v) = (_mm256_set1_pd(row_base), _mm256_set1_pd(col_base));
            let line = &mut out[row * width..(row + 1) * width];
            let (first, last) = match &blank {
                None => (0, width),
                Some(blank) => {
                    let (first, last) = blank.columns(width, (row_base, m01), (col_base, m11));
                    // Whole groups, moved left where they would leave the row.
                    let span = ((last - first).div_ceil(LANES) * LANES).min(width);
                    let first = first.min(width - span);
                    let last = first + span;
                    line[..first].fill(0.0);
                    line[last..].fill(0.0);
                    (first, last)
                }
            };
            let mut col = first;
            while col + LANES <= last {
                let cols = _mm256_add_pd(_mm256_set1_pd(col as f64), lane_offsets);
                let source_row = _mm256_add_pd(row_base_v, _mm256_mul_pd(cols, step_row));
                let source_col = _mm256_add_pd(col_base_v, _mm256_mul_pd(cols, step_col));
                let inside = _mm256_and_pd(
                    _mm256_and_pd(
                        _mm256_cmp_pd::<_CMP_GE_OQ>(source_row, zero),
                        _mm256_cmp_pd::<_CMP_LT_OQ>(source_row, below_row),
                    ),
                    _mm256_and_pd(
                        _mm256_cmp_pd::<_CMP_GE_OQ>(source_col, zero),
                        _mm256_cmp_pd::<_CMP_LT_OQ>(source_col, below_col),
                    ),
                );
                let lanes_inside = _mm256_movemask_pd(inside);
                if lanes_inside == 0 {
                    for c in col..col + LANES {
                        let point = (row_base + c as f64 * m01, col_base + c as f64 * m11);
                        sample(source, shape, point, fill, cval, &mut line[c..]);
                    }
                    col += LANES;
                    continue;
                }
                // Lanes outside read pixel 0 and are redone below.
                let source_row = _mm256_and_pd(source_row, inside);
                let source_col = _mm256_and_pd(source_col, inside);
                // Inside the image truncation is the floor.
                let r = _mm256_round_pd::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(source_row);
                let c = _mm256_round_pd::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(source_col);
                let row_first = _mm256_sub_pd(one, _mm256_sub_pd(source_row, r));
                let row_second = _mm256_sub_pd(one, row_first);
                let col_first = _mm256_sub_pd(one, _mm256_sub_pd(source_col, c));
                let col_second = _mm256_sub_pd(one, col_first);
                let top_left = _mm_add_epi32(
                    _mm_mullo_epi32(_mm256_cvttpd_epi32(r), stride),
                    _mm256_cvttpd_epi32(c),
                );
                let top_right = _mm_add_epi32(top_left, next);
                let bottom_left = _mm_add_epi32(top_left, stride);
                let bottom_right = _mm_add_epi32(bottom_left, next);
                // SAFETY: every index is that of a pixel inside the image:
                // a sample point inside has a neighbour on each side, and
                // the others were set to pixel 0.
                let base = pixels.as_ptr();
                let v00 = _mm256_i32gather_pd::<8>(base, top_left);
                let v01 = _mm256_i32gather_pd::<8>(base, top_right);
                let v10 = _mm256_i32gather_pd::<8>(base, bottom_left);
                let v11 = _mm256_i32gather_pd::<8>(base, bottom_right);
                let mut sum = zero;
                sum = _mm256_add_pd(sum, _mm256_mul_pd(_mm256_mul_pd(v00, row_first), col_first));
                sum = _mm256_add_pd(
                    sum,
                    _mm256_mul_pd(_mm256_mul_pd(v01, row_first), col_second),
                );
                sum = _mm256_add_pd(
                    sum,
                    _mm256_mul_pd(_mm256_mul_pd(v10, row_second), col_first),
                );
                sum = _mm256_add_pd(
                    sum,
                    _mm256_mul_pd(_mm256_mul_pd(v11, row_second), col_second),
                );
                let values = _mm256_cvtpd_ps(sum);
                // SAFETY: `col + LANES <= last <= width`, the length of `line`.
                _mm_storeu_ps(line.as_mut_ptr().add(col), values);
                if lanes_inside != 0b1111 {
                    for lane in (0..LANES).filter(|lane| lanes_inside & (1 << lane) == 0) {
                        let c = col + lane;
                        let point = (row_base + c as f64 * m01, col_base + c as f64 * m11);
                        sample(source, shape, point, fill, cval, &mut line[c..]);
                    }
                }
                col += LANES;
            }
            for c in col..last {
                let point = (row_base + c as f64 * m01, col_base + c as f64 * m11);
                sample(source, shape, point, fill, cval, &mut line[c..]);
            }
        }
    }
}

/// scipy's sum over the four neighbours at `corners` (row-major), in `f64`.
#[inline(always)]
fn bilinear<E: Element>(source: &[E], corners: [usize; 4], rows: &Taps, cols: &Taps) -> f32 {
    let [v00, v01, v10, v11] = corners.map(|i| source[i].to_f64());
    let mut sum = 0.0f64;
    sum += v00 * rows.first_weight * cols.first_weight;
    sum += v01 * rows.first_weight * cols.second_weight;
    sum += v10 * rows.second_weight * cols.first_weight;
    sum += v11 * rows.second_weight * cols.second_weight;
    sum as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warp_plane(
        source: &[f32],
        height: usize,
        width: usize,
        params: &TransformParams,
    ) -> Vec<f32> {
        let mut out = vec![f32::NAN; source.len()];
        warp(
            source,
            [height, width, 1],
            params,
            FillMode::Nearest,
            0.0,
            &mut out,
        );
        out
    }

    /// The vectorised path and the pixel-by-pixel one give the same bits,
    /// for every fill mode, odd widths (a scalar tail), byte and float
    /// pixels, and points that leave the image on every side.
    #[test]
    fn vectorised_and_scalar_paths_agree_to_the_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let fills = [
            FillMode::Nearest,
            FillMode::Constant,
            FillMode::Reflect,
            FillMode::Wrap,
        ];
        for case in 0..400 {
            let (height, width) = (rng.random_range(2..40), rng.random_range(4..41));
            let bytes: Vec<u8> = (0..height * width).map(|_| rng.random()).collect();
            let mut floats: Vec<f32> = bytes.iter().map(|&v| f32::from(v) / 7.0).collect();
            floats[0] = -0.0;
            let params = TransformParams {
                theta: rng.random_range(-60.0..60.0),
                tx: rng.random_range(-6.0..6.0),
                ty: rng.random_range(-6.0..6.0),
                shear: if case % 3 == 0 {
                    rng.random_range(-20.0..20.0)
                } else {
                    0.0
                },
                zx: rng.random_range(0.5..1.6),
                zy: rng.random_range(0.5..1.6),
                ..TransformParams::default()
            };
            let map = InverseMap::new(&params, height, width).expect("an affine part");
            let fill = fills[case % 4];
            let shape = [height, width, 1];
            let run = |source: &dyn Fn(&mut [f32], &mut [f32])| {
                let (mut fast, mut slow) = (
                    vec![f32::NAN; height * width],
                    vec![f32::NAN; height * width],
                );
                source(&mut fast, &mut slow);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&fast),
                    bits(&slow),
                    "case {case}: {params:?}, {fill:?}"
                );
            };
            run(&|fast, slow| {
                warp(&bytes, shape, &params, fill, 3.5, fast);
                warp_rows(&bytes, shape, &params, &map, fill, 3.5, None, slow);
            });
            run(&|fast, slow| {
                warp(&floats, shape, &params, fill, 3.5, fast);
                warp_rows(&floats, shape, &params, &map, fill, 3.5, None, slow);
            });
        }
    }

    /// Images with blank margins drawn for [`skipping_blank_pixels_changes_no_bit`]:
    /// the non-zero values fill a random box (maybe empty, maybe one pixel,
    /// maybe touching the edges) with some NaN, -0.0 and zeros inside.
    fn image_with_margins(
        seed: u64,
        [height, width, channels]: [usize; 3],
        [top, bottom, left, right]: [usize; 4],
    ) -> (Vec<u8>, Vec<f32>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (mut bytes, mut floats) = (
            vec![0u8; height * width * channels],
            vec![0.0f32; height * width * channels],
        );
        let rows = top.min(height)..height.saturating_sub(bottom);
        let cols = left.min(width)..width.saturating_sub(right);
        for row in rows {
            for col in cols.clone() {
                for k in 0..channels {
                    let at = (row * width + col) * channels + k;
                    let kind: u8 = rng.random_range(0..10);
                    bytes[at] = if kind < 3 { 0 } else { rng.random() };
                    floats[at] = match kind {
                        0 => 0.0,
                        1 => -0.0,
                        2 if seed % 4 == 0 => f32::NAN,
                        _ => f32::from(bytes[at]) / 7.0 - 10.0,
                    };
                }
            }
        }
        (bytes, floats)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Writing `+0.0` for the output pixels that read only zeros gives
        /// the bits that computing every pixel gives.
        #[test]
        fn skipping_blank_pixels_changes_no_bit(
            seed in proptest::prelude::any::<u64>(),
            height in 1usize..24,
            width in 1usize..24,
            three_channels in proptest::prelude::any::<bool>(),
            margins in proptest::array::uniform4(0usize..10),
            single_pixel in proptest::prelude::any::<bool>(),
            theta in -60.0f64..60.0,
            (tx, ty) in (-6.0f64..6.0, -6.0f64..6.0),
            shear in proptest::prop_oneof![proptest::strategy::Just(0.0), -30.0f64..30.0],
            (zx, zy) in (0.5f64..1.6, 0.5f64..1.6),
            (flip_horizontal, flip_vertical) in (
                proptest::bool::weighted(0.2),
                proptest::bool::weighted(0.2),
            ),
            fill in proptest::sample::select(vec![
                FillMode::Nearest,
                FillMode::Constant,
                FillMode::Reflect,
                FillMode::Wrap,
            ]),
            cval in proptest::sample::select(vec![0.0f32, -0.0, 2.5]),
        ) {
            let channels = if three_channels { 3 } else { 1 };
            let shape = [height, width, channels];
            let margins = if single_pixel {
                // One pixel: the box is 1x1 at (margins[0], margins[2]).
                let (row, col) = (margins[0].min(height - 1), margins[2].min(width - 1));
                [row, height - 1 - row, col, width - 1 - col]
            } else {
                margins
            };
            let (bytes, floats) = image_with_margins(seed, shape, margins);
            let params = TransformParams {
                theta,
                tx,
                ty,
                shear,
                zx,
                zy,
                flip_horizontal,
                flip_vertical,
                ..TransformParams::default()
            };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let (mut fast, mut full) = (vec![f32::NAN; bytes.len()], vec![f32::NAN; bytes.len()]);
            warp(&bytes, shape, &params, fill, cval, &mut fast);
            warp_full(&bytes, shape, &params, fill, cval, &mut full);
            proptest::prop_assert_eq!(bits(&fast), bits(&full), "u8");
            warp(&floats, shape, &params, fill, cval, &mut fast);
            warp_full(&floats, shape, &params, fill, cval, &mut full);
            proptest::prop_assert_eq!(bits(&fast), bits(&full), "f32");
        }
    }

    /// The blank bounds of a digit with a margin, and the cases where
    /// they cannot serve.
    #[test]
    fn blank_bounds_serve_only_where_nothing_outside_reads_inside() {
        let mut image = vec![0u8; 5 * 6];
        image[6 + 2] = 9; // (1, 2)
        image[3 * 6 + 3] = 9; // (3, 3)
        let shape = [5, 6, 1];
        let blank = Blank::new(&image, shape, FillMode::Nearest, 0.0).expect("a margin");
        assert_eq!(
            (blank.row_low, blank.row_high, blank.col_low, blank.col_high),
            (0.0, 4.0, 1.0, 4.0)
        );
        assert!(Blank::new(&image, shape, FillMode::Constant, 1.0).is_none());
        assert!(Blank::new(&image, shape, FillMode::Constant, -0.0).is_none());
        assert!(Blank::new(&image, shape, FillMode::Reflect, 0.0).is_none());
        image[4 * 6] = 1; // (4, 0), on the edge
        assert!(Blank::new(&image, shape, FillMode::Nearest, 0.0).is_none());
        let blank = Blank::new(&image, shape, FillMode::Constant, 0.0).expect("cval 0");
        assert_eq!(
            (blank.row_low, blank.row_high, blank.col_low, blank.col_high),
            (0.0, 5.0, -1.0, 4.0)
        );
    }

    /// A point on the last column of a `Constant` image also reads the
    /// column before it, with weight 0: a NaN there makes the output NaN.
    #[test]
    fn a_nan_next_to_the_last_column_still_reaches_the_output() {
        let mut image = vec![0.0f32; 3 * 5];
        image[5 + 3] = f32::NAN; // (1, 3)
        let params = TransformParams {
            tx: 1.0,
            ..TransformParams::default()
        };
        let shape = [3, 5, 1];
        let (mut fast, mut full) = (vec![0.0; 15], vec![0.0; 15]);
        warp(&image, shape, &params, FillMode::Constant, 0.0, &mut fast);
        warp_full(&image, shape, &params, FillMode::Constant, 0.0, &mut full);
        // Output column 3 reads column 4 exactly, and column 3 with weight 0.
        assert!(fast[5 + 3].is_nan());
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&full));
    }

    #[test]
    fn the_identity_builds_no_map() {
        assert!(InverseMap::new(&TransformParams::default(), 4, 5).is_none());
    }

    #[test]
    fn a_positive_tx_reads_from_the_right() {
        let params = TransformParams {
            tx: 1.0,
            ..TransformParams::default()
        };
        let source: Vec<f32> = (0..6).map(|v| v as f32).collect();
        // One row 0..6: output(c) = input(c + 1), the last column clamped.
        assert_eq!(
            warp_plane(&source, 1, 6, &params),
            vec![1., 2., 3., 4., 5., 5.]
        );
    }

    #[test]
    fn fill_modes_fold_indices_as_their_pictures_say() {
        let n = 4;
        let fold = |fill| (-4..8).map(|i| fold_index(i, n, fill)).collect::<Vec<_>>();
        assert_eq!(
            fold(FillMode::Nearest),
            [0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3]
        );
        assert_eq!(
            fold(FillMode::Reflect),
            [3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]
        );
        assert_eq!(fold(FillMode::Wrap), [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn reflect_and_wrap_fold_coordinates_into_the_image() {
        // Half a pixel left of the edge mirrors to half a pixel left of it.
        assert_eq!(fold_coordinate(-0.25, 4, FillMode::Reflect), -0.75);
        assert_eq!(fold_coordinate(4.5, 4, FillMode::Reflect), 2.5);
        assert_eq!(fold_coordinate(-0.5, 4, FillMode::Wrap), 3.5);
        assert_eq!(fold_coordinate(9.25, 4, FillMode::Wrap), 1.25);
        assert_eq!(fold_coordinate(3.5, 4, FillMode::Constant), -1.0);
    }

    #[test]
    fn wrap_shifts_by_whole_pixels_like_a_roll() {
        let params = TransformParams {
            tx: 2.0,
            ..TransformParams::default()
        };
        let source: Vec<f32> = (0..5).map(|v| v as f32).collect();
        let mut out = vec![0.0; 5];
        warp(&source, [1, 5, 1], &params, FillMode::Wrap, 0.0, &mut out);
        assert_eq!(out, vec![2., 3., 4., 0., 1.]);
    }

    #[test]
    fn constant_fills_points_outside_with_cval() {
        let params = TransformParams {
            ty: -1.5,
            ..TransformParams::default()
        };
        let source = vec![1.0f32; 4 * 3];
        let mut out = vec![0.0; 12];
        warp(
            &source,
            [4, 3, 1],
            &params,
            FillMode::Constant,
            -7.0,
            &mut out,
        );
        // Rows 0 and 1 read rows -1.5 and -0.5, outside the image.
        assert_eq!(&out[..6], &[-7.0; 6]);
        assert_eq!(&out[6..], &[1.0; 6]);
    }

    #[test]
    fn extreme_parameters_do_not_panic() {
        let source = vec![0.5f32; 9];
        for value in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e300, -1e300] {
            for fill in [
                FillMode::Nearest,
                FillMode::Constant,
                FillMode::Reflect,
                FillMode::Wrap,
            ] {
                let params = TransformParams {
                    theta: value,
                    tx: value,
                    zx: value,
                    ..TransformParams::default()
                };
                let mut out = vec![0.0; 9];
                warp(&source, [3, 3, 1], &params, fill, 0.0, &mut out);
            }
        }
    }
}
