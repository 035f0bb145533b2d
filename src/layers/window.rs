//! Sliding windows over images: padding and the geometry of a window's
//! path, shared by [`Conv2D`](super::Conv2D),
//! [`MaxPooling2D`](super::MaxPooling2D) and
//! [`AveragePooling2D`](super::AveragePooling2D).

use serde::{Deserialize, Serialize};

use crate::error::format_batch_shape;
use crate::{Error, Result};

/// How a window layer treats the borders of its input, as Keras'
/// `padding` argument.
///
/// ```text
/// valid   no padding: out = floor((in - window) / stride) + 1
/// same    out = ceil(in / stride), padded with
///         total = max((out - 1) * stride + window - in, 0)
///         of which floor(total / 2) before (top, left), the rest after
/// ```
///
/// The padding of `same` is zeros for a convolution and ignored by
/// pooling: a max leaves it out, and an average divides by the number of
/// input values its window covers, as in Keras and TensorFlow. When
/// `total` is odd, the extra row or column goes at the bottom or right.
///
/// # Examples
///
/// ```
/// use kerust::layers::Padding;
///
/// assert_eq!(Padding::default(), Padding::Valid);
/// assert_eq!(Padding::Same.name(), "same");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// No padding: windows stay inside the input (Keras' `"valid"`, the
    /// default).
    #[default]
    Valid,
    /// Padding so that the output has `ceil(in / stride)` rows and
    /// columns (Keras' `"same"`).
    Same,
}

impl Padding {
    /// The Keras name: `"valid"` or `"same"`.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
        }
    }
}

/// Where a window of `window` rows and columns, moved by `strides`, falls on
/// an input of `height x width x channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geometry {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub out_height: usize,
    pub out_width: usize,
    pub window: (usize, usize),
    pub strides: (usize, usize),
    pub pad_top: usize,
    pub pad_left: usize,
}

impl Geometry {
    /// The geometry for one sample of `input_shape`, `(height, width,
    /// channels)`. `layer` and `what` ("kernel", "pool") name the layer and
    /// its window in errors.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for a shape that is not an image with at
    /// least one row, column and channel, or, with `valid` padding or when
    /// `window_fits` is asked for, one smaller than the window.
    pub fn new(
        layer: &str,
        what: &str,
        input_shape: &[usize],
        window: (usize, usize),
        strides: (usize, usize),
        padding: Padding,
        window_fits: bool,
    ) -> Result<Self> {
        let &[height, width, channels] = input_shape else {
            return Err(shape_error(
                layer,
                "(None, height, width, channels)".to_string(),
                input_shape,
            ));
        };
        if height == 0 || width == 0 || channels == 0 {
            return Err(shape_error(
                layer,
                "(None, height, width, channels), each at least 1".to_string(),
                input_shape,
            ));
        }
        let (kh, kw) = window;
        if (window_fits || padding == Padding::Valid) && (kh > height || kw > width) {
            return Err(shape_error(
                layer,
                format!("(None, height >= {kh}, width >= {kw}, channels) for a {kh}x{kw} {what}"),
                input_shape,
            ));
        }
        let (out_height, pad_top) = axis(height, kh, strides.0, padding);
        let (out_width, pad_left) = axis(width, kw, strides.1, padding);
        Ok(Geometry {
            height,
            width,
            channels,
            out_height,
            out_width,
            window,
            strides,
            pad_top,
            pad_left,
        })
    }

    /// The input shape, `(height, width, channels)`.
    pub fn input_shape(&self) -> [usize; 3] {
        [self.height, self.width, self.channels]
    }

    /// The input row that row `ky` of the window over output row `oy` reads,
    /// or `None` in the padding.
    pub fn source_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.strides.0 + ky)
            .checked_sub(self.pad_top)
            .filter(|&row| row < self.height)
    }

    /// The input column that column `kx` of the window over output column
    /// `ox` reads, or `None` in the padding.
    pub fn source_col(&self, ox: usize, kx: usize) -> Option<usize> {
        (ox * self.strides.1 + kx)
            .checked_sub(self.pad_left)
            .filter(|&col| col < self.width)
    }

    /// The offsets in a batch of inputs of the first channel of each
    /// position of the window over output cell `cell` (cells numbered `(n,
    /// oy, ox)` in row-major order), in row-major order, leaving out the
    /// padding.
    pub fn window_offsets(&self, cell: usize) -> impl Iterator<Item = usize> + '_ {
        let per_image = self.out_height * self.out_width;
        let (n, within) = (cell / per_image, cell % per_image);
        let (oy, ox) = (within / self.out_width, within % self.out_width);
        let image = n * self.height * self.width * self.channels;
        let (kh, kw) = self.window;
        (0..kh)
            .filter_map(move |ky| self.source_row(oy, ky))
            .flat_map(move |iy| {
                (0..kw)
                    .filter_map(move |kx| self.source_col(ox, kx))
                    .map(move |ix| image + (iy * self.width + ix) * self.channels)
            })
    }
}

/// Output length and padding before, along one axis.
fn axis(input: usize, window: usize, stride: usize, padding: Padding) -> (usize, usize) {
    match padding {
        Padding::Valid => ((input - window) / stride + 1, 0),
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + window).saturating_sub(input);
            (out, total / 2)
        }
    }
}

fn shape_error(layer: &str, expected: String, got: &[usize]) -> Error {
    Error::ShapeMismatch {
        layer: layer.to_string(),
        expected,
        got: format_batch_shape(got),
    }
}

/// Refuses a window or stride with a zero side.
pub(super) fn check_pair(name: &str, pair: (usize, usize), class_name: &str) -> Result<()> {
    if pair.0 == 0 || pair.1 == 0 {
        return Err(Error::invalid(
            name,
            format!("({}, {})", pair.0, pair.1),
            format!("a {class_name} layer needs a {name} of at least 1 on both axes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_smaller_half_first() {
        // (ceil(5 / 2) - 1) * 2 + 4 - 5 = 3 rows: 1 above, 2 below.
        assert_eq!(axis(5, 4, 2, Padding::Same), (3, 1));
        // (ceil(4 / 2) - 1) * 2 + 3 - 4 = 1 column, on the right.
        assert_eq!(axis(4, 3, 2, Padding::Same), (2, 0));
        // A stride longer than the window needs no padding.
        assert_eq!(axis(6, 2, 3, Padding::Same), (2, 0));
    }

    #[test]
    fn valid_padding_drops_what_does_not_fill_a_window() {
        assert_eq!(axis(5, 2, 2, Padding::Valid), (2, 0));
        assert_eq!(axis(5, 5, 1, Padding::Valid), (1, 0));
    }

    #[test]
    fn rows_in_the_padding_have_no_source() {
        let g = Geometry::new(
            "c",
            "kernel",
            &[5, 4, 1],
            (4, 3),
            (2, 2),
            Padding::Same,
            true,
        )
        .unwrap();
        assert_eq!(
            (g.out_height, g.out_width, g.pad_top, g.pad_left),
            (3, 2, 1, 0)
        );
        assert_eq!(g.source_row(0, 0), None);
        assert_eq!(g.source_row(0, 1), Some(0));
        assert_eq!(g.source_row(2, 3), None);
        assert_eq!(g.source_col(1, 2), None);
    }
}
