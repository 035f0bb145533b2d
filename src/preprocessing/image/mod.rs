//! Image augmentation: Keras' `ImageDataGenerator`, exact, parallel and
//! reproducible.
//!
//! An [`ImageDataGenerator`] holds the ranges of the random transforms
//! (rotation, shifts, shear, zoom, flips, channel shift, brightness), how to
//! fill what comes in from outside the picture, and the standardization of
//! each image (rescale, sample- and feature-wise centring and scaling). It draws the
//! [`TransformParams`] of an image from a random stream
//! ([`random_transform`](ImageDataGenerator::random_transform)) and applies
//! them without randomness
//! ([`apply_transform`](ImageDataGenerator::apply_transform)).
//! [`flow`](ImageDataGenerator::flow) turns a data set into a [`Flow`], a
//! [`BatchSource`](crate::model::BatchSource) whose batches are made on
//! worker threads while the model trains.
//!
//! # Geometry
//!
//! An output pixel `(r, c)` of an image of `h x w` pixels is read from the
//! input at a point found by the inverse map below (x along the columns, y
//! along the rows, centre `(cy, cx) = ((h - 1) / 2, (w - 1) / 2)`), with
//! bilinear interpolation between the four pixels around it:
//!
//! ```text
//! [src_x - cx]             ( [1  -sin s] [zx   0] [c - cx]   [tx] )
//! [src_y - cy] = R(theta)  ( [0   cos s] [ 0  zy] [r - cy] + [ty] )
//!
//! R(theta) = [cos theta  -sin theta]
//!            [sin theta   cos theta]
//! ```
//!
//! So a positive `theta` turns the content counter-clockwise as displayed,
//! a positive `tx` moves it left and a positive `ty` up, and zoom factors
//! above 1 make it smaller. The flips mirror the result afterwards. Points
//! outside the input take the value their [`FillMode`] gives (by default
//! the nearest edge pixel). The coordinates are computed in `f64` and every value is summed in `f64`
//! in the order scipy uses, then rounded to `f32`. On the 21 reference
//! pictures of `tests/fixtures/augment_geometry.json` (Keras 3 calling
//! `scipy.ndimage.affine_transform` with order 1), every pixel comes out
//! equal to Keras'; the test allows 1e-5.
//!
//! # Random draws
//!
//! Each image draws, in this order: an angle uniform in
//! `[-rotation_range, rotation_range)`; a horizontal shift `tx` from
//! `width_shift_range` (times the width when below 1); a vertical shift
//! `ty` from `height_shift_range` (times the height when below 1); a shear
//! angle; two independent zoom factors `zx`, `zy` from the zoom range;
//! then two draws for the flips, each taken with probability 1/2 when
//! enabled; a channel shift uniform in `[-channel_shift_range,
//! channel_shift_range)`; a brightness factor from `brightness_range`. As
//! in Keras, a draw is skipped when its range is 0 (for the zoom, `[1, 1]`;
//! for the brightness, unset); the two flip draws never are.
//!
//! [`Flow`] draws the transform of image `i` in epoch `e` from
//! [`stream(seed, Purpose::Augment, e, i)`](crate::random::stream), `i`
//! being the image's index in the data set. The batches of an epoch are
//! therefore the same on every run, whatever the number of threads, and an
//! image gets the same transform in an epoch whatever the batch it falls
//! in.
//!
//! # Differences from Keras
//!
//! - **Shift axes.** Keras draws `tx`, the shift along the columns, from
//!   `height_shift_range` times the number of rows, and `ty`, along the
//!   rows, from `width_shift_range` times the number of columns: the two
//!   options swap roles. kerust draws the horizontal shift from
//!   `width_shift_range` and the width, the vertical one from
//!   `height_shift_range` and the height. Explicit [`TransformParams`]
//!   keep Keras' meaning of `tx` and `ty`, so Keras' pictures are
//!   reproduced exactly.
//! - **Centre of non-square images.** Keras centres the rows on
//!   `(w - 1) / 2` and the columns on `(h - 1) / 2`; kerust uses the true
//!   centre. Square images are not affected.
//! - **`Wrap`.** Keras hands `"wrap"` to scipy, which repeats the image
//!   with a period of one pixel less than its size (its first and last
//!   pixels overlap). kerust repeats it with a period of its size, as Keras
//!   documents `"wrap"`, so a whole-pixel shift is a roll.
//! - **Integer and list shifts.** Keras reads an integer range `n` as the
//!   integer shifts `-(n - 1)..=(n - 1)` and a list whose values are all
//!   below 1 as fractions of the size. In kerust a range is always
//!   continuous, and [`width_shift_values`](ImageDataGenerator::width_shift_values)
//!   takes pixels.
//! - **Random numbers.** Keras re-seeds numpy's global generator before
//!   each batch; kerust uses the streams above. The same seed therefore
//!   does not give Keras' values, but gives the same values on every run.
//! - **Brightness.** Keras brightens through an 8-bit picture, which
//!   truncates every value to a whole number; kerust keeps the fractions
//!   (see [`ImageDataGenerator::brightness_range`]).
//! - **Feature-wise options without `fit`.** Keras warns and leaves the
//!   images as they are; kerust's `flow` refuses with an error.
//! - **`preprocessing_function`** changes an image in place, where Keras'
//!   returns a new one; by name, [`ImageDataGenerator::set`] refuses it,
//!   since it takes a function.
//! - **Not supported.** `zca_whitening`, `zca_epsilon`,
//!   `validation_split`, `dtype`, `fit`'s
//!   `augment` and `rounds`, interpolation orders other than 1 and
//!   `channels_first`. [`ImageDataGenerator::set`] refuses them by name.
//!
//! # Examples
//!
//! ```
//! use kerust::model::BatchSource;
//! use kerust::preprocessing::image::ImageDataGenerator;
//! use ndarray::{Array1, Array4};
//!
//! # fn main() -> kerust::Result<()> {
//! let x = Array4::<f32>::zeros((64, 28, 28, 1));
//! let y = Array1::<f32>::zeros(64);
//! let augmenter = ImageDataGenerator::new()
//!     .rotation_range(15.0)
//!     .width_shift_range(0.1)
//!     .height_shift_range(0.1)
//!     .zoom_range(0.1);
//! let mut flow = augmenter.flow(&x, &y, 32)?.seed(42);
//! for epoch in 0..2 {
//!     flow.start_epoch(epoch)?;
//!     while let Some(batch) = flow.next_batch()? {
//!         assert_eq!(batch.x.shape(), &[32, 28, 28, 1]);
//!         flow.recycle(batch);
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod element;
mod flow;
mod generator;
mod intensity;
mod options;
mod preview;
mod warp;

pub use element::Element;
pub use flow::Flow;
pub use generator::ImageDataGenerator;
pub use options::OptionValue;
#[cfg(feature = "images")]
pub use preview::save_grid_png;
pub use warp::{FillMode, TransformParams};
