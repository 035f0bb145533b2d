//! A picture of what the augmenter does: originals next to the versions a
//! flow would feed in its first epochs.

use ndarray::{s, Array3, ArrayBase, Axis, Data, Dimension, Ix3};

use super::element::Element;
use super::flow::check_images;
use super::generator::ImageDataGenerator;
use crate::random::{stream, Purpose};
use crate::{Error, Result};

/// Pixels between two cells of a preview grid.
const GAP: usize = 2;

impl ImageDataGenerator {
    /// A grid of `rows x columns` cells, shaped `(height, width, channels)`:
    /// row `r` shows image `r` of `x` (shaped `(N, height, width,
    /// channels)`), first as it is, then as a flow seeded with `seed` gives
    /// it in epochs 0, 1, ... (`columns - 1` of them). Values are those of
    /// the batches, [standardized](Self::standardize) as they are; cells are 2 pixels apart, the gaps
    /// halfway between the smallest and the largest value.
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate) and
    /// [`standardize`](Self::standardize); [`Error::ShapeMismatch`] when `x` is
    /// not of rank 4 with non-zero sizes; [`Error::EmptyData`] when it holds
    /// no image; [`Error::InvalidArgument`] when `rows` or `columns` is 0 or
    /// `rows` exceeds the number of images.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::preprocessing::image::ImageDataGenerator;
    /// use ndarray::Array4;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let x = Array4::<f32>::zeros((10, 28, 28, 1));
    /// let grid = ImageDataGenerator::new().rotation_range(15.0).preview_grid(&x, 3, 5, 42)?;
    /// assert_eq!(grid.dim(), (3 * 28 + 2 * 2, 5 * 28 + 4 * 2, 1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn preview_grid<S, D>(
        &self,
        x: &ArrayBase<S, D>,
        rows: usize,
        columns: usize,
        seed: u64,
    ) -> Result<Array3<f32>>
    where
        S: Data,
        S::Elem: Element,
        D: Dimension,
    {
        self.validate()?;
        let [height, width, channels] =
            check_images("ImageDataGenerator::preview_grid", x.shape())?;
        let n = x.shape()[0];
        if rows == 0 || rows > n {
            return Err(Error::invalid(
                "rows",
                rows,
                format!("expected 1 to {n}, the number of images"),
            ));
        }
        if columns == 0 {
            return Err(Error::invalid("columns", 0, "expected at least 1"));
        }

        let x = x.view().into_dyn();
        let mut cells = Vec::with_capacity(rows * columns);
        for row in 0..rows {
            let image = x
                .index_axis(Axis(0), row)
                .into_dimensionality::<Ix3>()
                .map_err(|e| {
                    Error::shape("ImageDataGenerator::preview_grid", e.to_string(), x.shape())
                })?;
            for column in 0..columns {
                let params = if column == 0 {
                    Default::default()
                } else {
                    let mut rng = stream(seed, Purpose::Augment, column as u64 - 1, row as u64);
                    self.random_transform((height, width), &mut rng)
                };
                let mut cell = self.apply_transform(image.view(), &params);
                self.standardize(cell.view_mut())?;
                cells.push(cell);
            }
        }

        let (low, high) = cells
            .iter()
            .flat_map(|cell| cell.iter().copied())
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        let gap_value = if low <= high {
            low + (high - low) / 2.0
        } else {
            0.0
        };
        let mut grid = Array3::from_elem(
            (
                rows * height + (rows - 1) * GAP,
                columns * width + (columns - 1) * GAP,
                channels,
            ),
            gap_value,
        );
        for (k, cell) in cells.iter().enumerate() {
            let top = (k / columns) * (height + GAP);
            let left = (k % columns) * (width + GAP);
            grid.slice_mut(s![top..top + height, left..left + width, ..])
                .assign(cell);
        }
        Ok(grid)
    }
}

/// Saves a grid from [`ImageDataGenerator::preview_grid`] (or any image
/// shaped `(height, width, channels)` with 1, 3 or 4 channels) as a PNG
/// file, written atomically.
///
/// Values are stretched as Keras' `array_to_img(scale=True)` does: the
/// smallest becomes black (0), the largest white (255). Non-finite values
/// count as the smallest.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a channel count other than 1, 3 or 4 or a
/// size the PNG format cannot hold; [`Error::Io`] when the file cannot be
/// written.
///
/// # Examples
///
/// ```
/// use kerust::preprocessing::image::{save_grid_png, ImageDataGenerator};
/// use ndarray::Array4;
///
/// # fn main() -> kerust::Result<()> {
/// let x = Array4::<f32>::from_elem((2, 8, 8, 1), 0.5);
/// let grid = ImageDataGenerator::new().zoom_range(0.2).preview_grid(&x, 2, 4, 0)?;
/// let folder = std::env::temp_dir();
/// save_grid_png(folder.join("kerust-preview-doc.png"), grid.view())?;
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "images")]
pub fn save_grid_png(
    path: impl AsRef<std::path::Path>,
    grid: ndarray::ArrayView3<'_, f32>,
) -> Result<()> {
    use image::{ExtendedColorType, ImageEncoder};

    let (height, width, channels) = grid.dim();
    let color = match channels {
        1 => ExtendedColorType::L8,
        3 => ExtendedColorType::Rgb8,
        4 => ExtendedColorType::Rgba8,
        _ => {
            return Err(Error::invalid(
                "grid",
                crate::error::format_shape(grid.shape()),
                "expected 1, 3 or 4 channels",
            ))
        }
    };
    let (low, high) = grid
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let span = if high > low { high - low } else { 1.0 };
    let bytes: Vec<u8> = grid
        .iter()
        .map(|&v| {
            let v = if v.is_finite() { (v - low) / span } else { 0.0 };
            (v * 255.0).round().clamp(0.0, 255.0) as u8
        })
        .collect();

    let size = |n: usize, name: &str| {
        u32::try_from(n).map_err(|_| Error::invalid(name, n, "too large for a PNG file"))
    };
    let (png_width, png_height) = (size(width, "width")?, size(height, "height")?);
    let mut encoded = Vec::new();
    image::codecs::png::PngEncoder::new(&mut encoded)
        .write_image(&bytes, png_width, png_height, color)
        .map_err(|e| {
            Error::invalid(
                "grid",
                crate::error::format_shape(grid.shape()),
                e.to_string(),
            )
        })?;
    crate::io::write_atomic(path, &encoded)
}
