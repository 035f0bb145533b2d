//! The augmenter's configuration, its random draw and its deterministic
//! application.

use ndarray::{Array3, ArrayBase, ArrayView3, ArrayViewMut3, Data, Dimension};
use rand::Rng;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::element::Element;
use super::flow::check_images;
use super::intensity::{self, STD_EPSILON};
use super::warp::{warp, FillMode, TransformParams};
use crate::error::format_shape;
use crate::{Error, Result};

/// Random image augmentation in the manner of Keras' `ImageDataGenerator`.
///
/// A builder: every option starts at Keras' default, which leaves images
/// unchanged, and each setter returns the generator. The options are
/// checked once, by [`validate`](Self::validate), which
/// [`flow`](Self::flow) and [`preview_grid`](Self::preview_grid) call.
///
/// The work is split as in Keras: [`random_transform`](Self::random_transform)
/// draws the [`TransformParams`] of one image from a random stream, and
/// [`apply_transform`](Self::apply_transform) applies given parameters
/// without any randomness. [`flow`](Self::flow) does both for every image
/// of a data set, on worker threads.
///
/// See the [module documentation](super) for the exact geometry and the
/// differences from Keras.
///
/// # Examples
///
/// ```
/// use kerust::preprocessing::image::ImageDataGenerator;
/// use kerust::random::{stream, Purpose};
///
/// # fn main() -> kerust::Result<()> {
/// let augmenter = ImageDataGenerator::new()
///     .rotation_range(15.0)
///     .width_shift_range(0.1)
///     .height_shift_range(0.1)
///     .zoom_range(0.1);
/// augmenter.validate()?;
///
/// let mut rng = stream(42, Purpose::Augment, 0, 0);
/// let params = augmenter.random_transform((28, 28), &mut rng);
/// assert!(params.theta.abs() <= 15.0);
/// assert!(params.tx.abs() <= 2.8 && params.ty.abs() <= 2.8);
/// assert!((0.9..=1.1).contains(&params.zx));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageDataGenerator {
    rotation_range: f64,
    width_shift: ShiftRange,
    height_shift: ShiftRange,
    shear_range: f64,
    zoom_range: [f64; 2],
    horizontal_flip: bool,
    vertical_flip: bool,
    pub(super) fill_mode: FillMode,
    pub(super) cval: f32,
    channel_shift_range: f64,
    brightness_range: Option<[f64; 2]>,
    pub(super) rescale: Option<f32>,
    samplewise_center: bool,
    samplewise_std_normalization: bool,
    featurewise_center: bool,
    featurewise_std_normalization: bool,
    /// Per-channel statistics found by [`fit`](ImageDataGenerator::fit).
    fitted: Option<FeatureStats>,
    #[serde(skip)]
    preprocessing: Option<Preprocessing>,
}

/// A function that changes one image's values in place.
type ImageFunction = dyn Fn(ArrayViewMut3<'_, f32>) + Send + Sync;

/// A function given to [`ImageDataGenerator::preprocessing_function`].
#[derive(Clone)]
struct Preprocessing(Arc<ImageFunction>);

impl fmt::Debug for Preprocessing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<preprocessing function>")
    }
}

/// Two generators are equal only if they hold the same function.
impl PartialEq for Preprocessing {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The per-channel mean and standard deviation of the images given to
/// [`ImageDataGenerator::fit`], each computed only when its option is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FeatureStats {
    mean: Option<Vec<f32>>,
    std: Option<Vec<f32>>,
}

/// How a shift is drawn: from a range, or from a list of pixel values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ShiftRange {
    /// Uniform in `[-r, r)`: a fraction of the size when `r < 1`, pixels
    /// otherwise.
    Range(f64),
    /// One of the values, in pixels, with a random sign.
    Values(Vec<f64>),
}

impl ShiftRange {
    fn check(&self, name: &str) -> Result<()> {
        match self {
            ShiftRange::Range(r) => check_range(name, *r),
            ShiftRange::Values(values) if values.is_empty() => Err(Error::invalid(
                name,
                "[]",
                "expected at least one pixel value",
            )),
            ShiftRange::Values(values) => match values.iter().find(|v| !v.is_finite()) {
                Some(bad) => Err(Error::invalid(
                    name,
                    format!("{values:?}"),
                    format!("expected finite pixel values, found {bad}"),
                )),
                None => Ok(()),
            },
        }
    }

    /// Draws one shift in pixels along an axis of `size` pixels.
    fn draw<R: Rng + ?Sized>(&self, rng: &mut R, size: usize) -> f64 {
        match self {
            ShiftRange::Range(r) if *r == 0.0 => 0.0,
            ShiftRange::Range(r) => {
                let shift = uniform(rng, -r, *r);
                if *r < 1.0 {
                    shift * size as f64
                } else {
                    shift
                }
            }
            ShiftRange::Values(values) if values.is_empty() => 0.0,
            ShiftRange::Values(values) => {
                let value = values[rng.random_range(0..values.len())];
                if rng.random::<bool>() {
                    value
                } else {
                    -value
                }
            }
        }
    }
}

/// `lo + (hi - lo) * u` with `u` uniform in `[0, 1)`, as numpy's `uniform`.
fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

fn check_range(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(name, value, "expected a finite number >= 0"))
    }
}

impl Default for ImageDataGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl ImageDataGenerator {
    /// A generator with every option at Keras' default: no transform,
    /// fill mode `Nearest`, `cval` 0, no rescale.
    pub fn new() -> Self {
        ImageDataGenerator {
            rotation_range: 0.0,
            width_shift: ShiftRange::Range(0.0),
            height_shift: ShiftRange::Range(0.0),
            shear_range: 0.0,
            zoom_range: [1.0, 1.0],
            horizontal_flip: false,
            vertical_flip: false,
            fill_mode: FillMode::Nearest,
            cval: 0.0,
            channel_shift_range: 0.0,
            brightness_range: None,
            rescale: None,
            samplewise_center: false,
            samplewise_std_normalization: false,
            featurewise_center: false,
            featurewise_std_normalization: false,
            fitted: None,
            preprocessing: None,
        }
    }

    /// Rotations drawn uniformly in `[-degrees, degrees)` (default 0).
    pub fn rotation_range(mut self, degrees: f64) -> Self {
        self.rotation_range = degrees;
        self
    }

    /// Horizontal shifts (along the columns) drawn uniformly in
    /// `[-range, range)`: a fraction of the width when `range < 1`, pixels
    /// when `range >= 1` (default 0).
    pub fn width_shift_range(mut self, range: f64) -> Self {
        self.width_shift = ShiftRange::Range(range);
        self
    }

    /// Horizontal shifts of one of `pixels`, picked uniformly, with a
    /// random sign: `vec![1.0, 2.0]` gives -2, -1, 1 or 2 pixels.
    pub fn width_shift_values(mut self, pixels: Vec<f64>) -> Self {
        self.width_shift = ShiftRange::Values(pixels);
        self
    }

    /// Vertical shifts (along the rows) drawn uniformly in
    /// `[-range, range)`: a fraction of the height when `range < 1`, pixels
    /// when `range >= 1` (default 0).
    pub fn height_shift_range(mut self, range: f64) -> Self {
        self.height_shift = ShiftRange::Range(range);
        self
    }

    /// Vertical shifts of one of `pixels`, picked uniformly, with a random
    /// sign.
    pub fn height_shift_values(mut self, pixels: Vec<f64>) -> Self {
        self.height_shift = ShiftRange::Values(pixels);
        self
    }

    /// Shear angles drawn uniformly in `[-degrees, degrees)` (default 0).
    pub fn shear_range(mut self, degrees: f64) -> Self {
        self.shear_range = degrees;
        self
    }

    /// Zoom factors drawn uniformly in `[1 - range, 1 + range)`, one for
    /// each axis (default 0: no zoom). A factor above 1 makes the content
    /// smaller.
    pub fn zoom_range(mut self, range: f64) -> Self {
        self.zoom_range = [1.0 - range, 1.0 + range];
        self
    }

    /// Zoom factors drawn uniformly in `[lower, upper)`, one for each axis.
    pub fn zoom_range_pair(mut self, lower: f64, upper: f64) -> Self {
        self.zoom_range = [lower, upper];
        self
    }

    /// Whether half of the images are mirrored left to right (default
    /// false).
    pub fn horizontal_flip(mut self, flip: bool) -> Self {
        self.horizontal_flip = flip;
        self
    }

    /// Whether half of the images are mirrored top to bottom (default
    /// false).
    pub fn vertical_flip(mut self, flip: bool) -> Self {
        self.vertical_flip = flip;
        self
    }

    /// How points outside the input are filled (default
    /// [`FillMode::Nearest`]).
    pub fn fill_mode(mut self, mode: FillMode) -> Self {
        self.fill_mode = mode;
        self
    }

    /// The value of points outside the input with [`FillMode::Constant`]
    /// (default 0).
    pub fn cval(mut self, value: f32) -> Self {
        self.cval = value;
        self
    }

    /// Value shifts drawn uniformly in `[-range, range)` (default 0): the
    /// shift is added to every value of the image, which is then clipped
    /// to the smallest and largest value the image had. The range is in
    /// the images' own units (e.g. 0 to 255 for bytes).
    pub fn channel_shift_range(mut self, range: f64) -> Self {
        self.channel_shift_range = range;
        self
    }

    /// Brightness factors drawn uniformly in `[lower, upper)` (default:
    /// none). As in Keras, the image is brightened as an 8-bit picture
    /// would be: values are multiplied by the factor and clipped to
    /// `[0, 255]`, so this option is meant for images of values in 0 to
    /// 255 (with `rescale` applied afterwards). An image with values
    /// outside `[0, 255]` is mapped from its own range onto it and back.
    ///
    /// Keras also truncates every value to a whole number on its way
    /// through the 8-bit picture, which turns an image of values in
    /// `[0, 1]` black; kerust keeps the fractions.
    pub fn brightness_range(mut self, lower: f64, upper: f64) -> Self {
        self.brightness_range = Some([lower, upper]);
        self
    }

    /// A factor applied to every value after the transform, e.g. `1/255`
    /// (default none). The first step of the standardization each image
    /// of a [`flow`](Self::flow) gets; see [`standardize`](Self::standardize).
    pub fn rescale(mut self, factor: f32) -> Self {
        self.rescale = Some(factor);
        self
    }

    /// A function applied to every image of a [`flow`](Self::flow) in
    /// place, after its transform and before `rescale`, as Keras'
    /// `preprocessing_function` (e.g. a model's own input scaling). It is
    /// given one image shaped `(height, width, channels)` and may change
    /// its values, not its shape. It runs on the flow's worker threads.
    ///
    /// A generator written with serde does not keep the function; two
    /// generators compare equal only if they hold the same one (or none).
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::preprocessing::image::ImageDataGenerator;
    /// use ndarray::Array3;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// // Scale bytes to [-1, 1], as many pretrained models expect.
    /// let augmenter = ImageDataGenerator::new()
    ///     .preprocessing_function(|mut image| image.mapv_inplace(|v| v / 127.5 - 1.0));
    /// let mut image = Array3::from_elem((2, 2, 1), 255.0f32);
    /// augmenter.standardize(image.view_mut())?;
    /// assert!(image.iter().all(|&v| v == 1.0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn preprocessing_function<F>(mut self, function: F) -> Self
    where
        F: Fn(ArrayViewMut3<'_, f32>) + Send + Sync + 'static,
    {
        self.preprocessing = Some(Preprocessing(Arc::new(function)));
        self
    }

    /// Whether each image is shifted to a mean of 0, over all its values
    /// (default false).
    pub fn samplewise_center(mut self, on: bool) -> Self {
        self.samplewise_center = on;
        self
    }

    /// Whether each image is divided by its standard deviation (plus
    /// 1e-6), over all its values (default false). As in Keras, it implies
    /// [`samplewise_center`](Self::samplewise_center).
    pub fn samplewise_std_normalization(mut self, on: bool) -> Self {
        self.samplewise_std_normalization = on;
        self
    }

    /// Whether each channel has the mean that [`fit`](Self::fit) found for
    /// it over the training images subtracted (default false). Needs `fit`
    /// before [`flow`](Self::flow) or [`standardize`](Self::standardize).
    pub fn featurewise_center(mut self, on: bool) -> Self {
        self.featurewise_center = on;
        self
    }

    /// Whether each channel is divided by the standard deviation (plus
    /// 1e-6) that [`fit`](Self::fit) found for it over the training images
    /// (default false). Needs `fit` first. As in Keras, it implies
    /// [`featurewise_center`](Self::featurewise_center).
    pub fn featurewise_std_normalization(mut self, on: bool) -> Self {
        self.featurewise_std_normalization = on;
        self
    }

    /// Checks every option.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the first bad option: a negative
    /// or non-finite range, an empty or non-finite list of shift values, a
    /// zoom range whose lower bound is not above 0 or lies above its upper
    /// bound, a non-finite `cval`, a zero or non-finite `rescale`.
    pub fn validate(&self) -> Result<()> {
        check_range("rotation_range", self.rotation_range)?;
        self.width_shift.check("width_shift_range")?;
        self.height_shift.check("height_shift_range")?;
        check_range("shear_range", self.shear_range)?;
        self.check_zoom()?;
        if !self.cval.is_finite() {
            return Err(Error::invalid(
                "cval",
                self.cval,
                "expected a finite number",
            ));
        }
        check_range("channel_shift_range", self.channel_shift_range)?;
        if let Some([lower, upper]) = self.brightness_range {
            if !(lower.is_finite() && upper.is_finite() && 0.0 <= lower && lower <= upper) {
                return Err(Error::invalid(
                    "brightness_range",
                    format!("[{lower}, {upper}]"),
                    "expected finite factors 0 <= lower <= upper, e.g. [0.8, 1.2]",
                ));
            }
        }
        match self.rescale {
            Some(f) if !f.is_finite() || f == 0.0 => Err(Error::invalid(
                "rescale",
                f,
                "expected a finite non-zero factor; leave it unset for none",
            )),
            _ => Ok(()),
        }
    }

    fn check_zoom(&self) -> Result<()> {
        let [lower, upper] = self.zoom_range;
        let shown = format!("[{lower}, {upper}]");
        if !lower.is_finite() || !upper.is_finite() {
            return Err(Error::invalid(
                "zoom_range",
                shown,
                "expected finite bounds",
            ));
        }
        if lower <= 0.0 {
            return Err(Error::invalid(
                "zoom_range",
                shown,
                "expected a lower bound above 0 (a scalar z gives [1 - z, 1 + z], \
                 so z must be below 1)",
            ));
        }
        if lower > upper {
            return Err(Error::invalid(
                "zoom_range",
                shown,
                "expected the lower bound not above the upper one",
            ));
        }
        Ok(())
    }

    /// Draws the parameters of one transform for an image of
    /// `(height, width)` pixels.
    ///
    /// The draws follow Keras' order: the angle if `rotation_range` is set,
    /// the horizontal shift `tx`, the vertical shift `ty`, the shear, the
    /// two zoom factors `zx` and `zy` (independent) unless the zoom range is
    /// `[1, 1]`, then two draws for the flips, made even when flips are off,
    /// then the channel shift and the brightness factor, each only when its
    /// option is set. Unlike Keras, `tx` (columns) comes from `width_shift_range` and the
    /// width, `ty` (rows) from `height_shift_range` and the height.
    ///
    /// Options that [`validate`](Self::validate) refuses give meaningless
    /// parameters here, but never a panic.
    pub fn random_transform<R: Rng + ?Sized>(
        &self,
        image_size: (usize, usize),
        rng: &mut R,
    ) -> TransformParams {
        let (height, width) = image_size;
        let theta = if self.rotation_range != 0.0 {
            uniform(rng, -self.rotation_range, self.rotation_range)
        } else {
            0.0
        };
        let tx = self.width_shift.draw(rng, width);
        let ty = self.height_shift.draw(rng, height);
        let shear = if self.shear_range != 0.0 {
            uniform(rng, -self.shear_range, self.shear_range)
        } else {
            0.0
        };
        let [lower, upper] = self.zoom_range;
        let (zx, zy) = if lower == 1.0 && upper == 1.0 {
            (1.0, 1.0)
        } else {
            let zx = uniform(rng, lower, upper);
            (zx, uniform(rng, lower, upper))
        };
        let flip_horizontal = rng.random::<f64>() < 0.5;
        let flip_vertical = rng.random::<f64>() < 0.5;
        let channel_shift_intensity = (self.channel_shift_range != 0.0)
            .then(|| uniform(rng, -self.channel_shift_range, self.channel_shift_range));
        let brightness = self
            .brightness_range
            .map(|[lower, upper]| uniform(rng, lower, upper));
        TransformParams {
            theta,
            tx,
            ty,
            shear,
            zx,
            zy,
            flip_horizontal: flip_horizontal && self.horizontal_flip,
            flip_vertical: flip_vertical && self.vertical_flip,
            channel_shift_intensity,
            brightness,
        }
    }

    /// Computes the per-channel statistics that `featurewise_center` and
    /// `featurewise_std_normalization` use, from training images shaped
    /// `(N, height, width, channels)` (bytes or floats), as Keras' `fit`:
    /// the rescale factor is applied first, the mean of each channel is
    /// taken over all images and pixels, and the standard deviation over
    /// the centred values. Only the statistics whose option is on are kept;
    /// a new call replaces them.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for an array that is not a stack of images,
    /// [`Error::EmptyData`] for none, and [`Error::NonFiniteInput`] for a
    /// NaN or infinite value.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::preprocessing::image::ImageDataGenerator;
    /// use ndarray::{Array3, Array4};
    ///
    /// # fn main() -> kerust::Result<()> {
    /// // Two 1x1 images of two channels: (0, 10) and (2, 30).
    /// let x = Array4::from_shape_vec((2, 1, 1, 2), vec![0.0f32, 10.0, 2.0, 30.0]).unwrap();
    /// let mut augmenter = ImageDataGenerator::new().featurewise_center(true);
    /// augmenter.fit(&x)?;
    /// let mut image = Array3::from_shape_vec((1, 1, 2), vec![1.0f32, 25.0]).unwrap();
    /// augmenter.standardize(image.view_mut())?;
    /// assert_eq!(image.into_raw_vec_and_offset().0, [0.0, 5.0]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn fit<S, D>(&mut self, x: &ArrayBase<S, D>) -> Result<()>
    where
        S: Data,
        S::Elem: Element,
        D: Dimension,
    {
        let image_shape = check_images("ImageDataGenerator::fit", x.shape())?;
        let channels = image_shape[2];
        let mut values: Vec<f32> = x.iter().map(|v| v.to_f32()).collect();
        Error::check_finite("x", &values, &image_shape)?;
        if let Some(factor) = self.rescale {
            values.iter_mut().for_each(|v| *v *= factor);
        }
        let (mean, std) = intensity::channel_stats(&values, channels);
        self.fitted = Some(FeatureStats {
            mean: self.centres_features().then_some(mean),
            std: self.featurewise_std_normalization.then_some(std),
        });
        Ok(())
    }

    /// The per-channel mean [`fit`](Self::fit) found (Keras' `mean`), if
    /// it computed one.
    pub fn feature_mean(&self) -> Option<&[f32]> {
        self.fitted.as_ref()?.mean.as_deref()
    }

    /// The per-channel standard deviation [`fit`](Self::fit) found (Keras'
    /// `std`, without the 1e-6 added when dividing), if it computed one.
    pub fn feature_std(&self) -> Option<&[f32]> {
        self.fitted.as_ref()?.std.as_deref()
    }

    /// Standardizes one image shaped `(height, width, channels)` in place,
    /// as Keras' `standardize` and as [`flow`](Self::flow) does to every
    /// image after its transform: the
    /// [`preprocessing_function`](Self::preprocessing_function), the
    /// rescale factor, then each image's own
    /// centring and scaling (`samplewise_center`,
    /// `samplewise_std_normalization`), then each channel's from
    /// [`fit`](Self::fit) (`featurewise_center`,
    /// `featurewise_std_normalization`). Divisions are by the standard
    /// deviation plus 1e-6.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when a feature-wise option is on and
    /// [`fit`](Self::fit) has not computed its statistic, or computed it
    /// for another number of channels.
    pub fn standardize(&self, mut image: ArrayViewMut3<'_, f32>) -> Result<()> {
        let (height, width, channels) = image.dim();
        self.check_fitted(channels)?;
        let shape = [height, width, channels];
        match image.as_slice_mut() {
            Some(values) => self.standardize_slice(values, shape),
            None => {
                let mut owned = image.to_owned();
                let Some(values) = owned.as_slice_mut() else {
                    unreachable!("a new array is in standard layout");
                };
                self.standardize_slice(values, shape);
                image.assign(&owned);
            }
        }
        Ok(())
    }

    /// Checks that the statistics the feature-wise options need have been
    /// fitted, for images of `channels` channels.
    pub(crate) fn check_fitted(&self, channels: usize) -> Result<()> {
        let fitted = self.fitted.as_ref();
        let needs = [
            (
                "featurewise_center",
                self.centres_features(),
                fitted.and_then(|f| f.mean.as_ref()),
            ),
            (
                "featurewise_std_normalization",
                self.featurewise_std_normalization,
                fitted.and_then(|f| f.std.as_ref()),
            ),
        ];
        for (name, on, stat) in needs {
            match stat {
                _ if !on => {}
                None => {
                    return Err(Error::invalid(
                        name,
                        true,
                        "needs the statistics of the training images: call \
                         `ImageDataGenerator::fit(&x)` with this option on first",
                    ))
                }
                Some(values) if values.len() != channels => {
                    return Err(Error::invalid(
                        name,
                        true,
                        format!(
                            "was fitted on images of {} channels, got images of {channels}",
                            values.len()
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Whether images are centred feature-wise: scaling implies centring,
    /// as in Keras.
    fn centres_features(&self) -> bool {
        self.featurewise_center || self.featurewise_std_normalization
    }

    /// [`standardize`](Self::standardize) on one image's values in
    /// row-major order, once [`check_fitted`](Self::check_fitted) passed.
    pub(crate) fn standardize_slice(&self, values: &mut [f32], shape: [usize; 3]) {
        let [height, width, channels] = shape;
        if let Some(Preprocessing(function)) = &self.preprocessing {
            match ArrayViewMut3::from_shape((height, width, channels), &mut *values) {
                Ok(image) => function(image),
                Err(_) => unreachable!("an image's values fill its shape"),
            }
        }
        if let Some(factor) = self.rescale {
            values.iter_mut().for_each(|v| *v *= factor);
        }
        if self.samplewise_center || self.samplewise_std_normalization {
            let (mean, _) = intensity::mean_and_std(values);
            values.iter_mut().for_each(|v| *v -= mean);
        }
        if self.samplewise_std_normalization {
            let (_, std) = intensity::mean_and_std(values);
            let divisor = std + STD_EPSILON;
            values.iter_mut().for_each(|v| *v /= divisor);
        }
        let fitted = self.fitted.as_ref();
        if let Some(mean) = fitted.and_then(|f| f.mean.as_ref()) {
            if self.centres_features() {
                for pixel in values.chunks_exact_mut(channels) {
                    pixel.iter_mut().zip(mean).for_each(|(v, m)| *v -= m);
                }
            }
        }
        if let Some(std) = fitted.and_then(|f| f.std.as_ref()) {
            if self.featurewise_std_normalization {
                for pixel in values.chunks_exact_mut(channels) {
                    pixel
                        .iter_mut()
                        .zip(std)
                        .for_each(|(v, s)| *v /= s + STD_EPSILON);
                }
            }
        }
    }

    /// Applies `params` to one image shaped `(height, width, channels)`,
    /// with this generator's fill mode and `cval`: the geometry, then the
    /// channel shift and the brightness. Deterministic; the standardization
    /// (rescale and centring) is not applied: Keras applies it in a later
    /// step, [`standardize`](Self::standardize), as [`flow`](Self::flow)
    /// does.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::preprocessing::image::{ImageDataGenerator, TransformParams};
    /// use ndarray::Array3;
    ///
    /// let mut image = Array3::<f32>::zeros((5, 5, 1));
    /// image[[2, 2, 0]] = 1.0;
    /// let params = TransformParams { tx: 1.0, ..TransformParams::default() };
    /// let moved = ImageDataGenerator::new().apply_transform(image.view(), &params);
    /// // A positive tx moves the content one column to the left.
    /// assert_eq!(moved[[2, 1, 0]], 1.0);
    /// ```
    pub fn apply_transform<E: Element>(
        &self,
        image: ArrayView3<'_, E>,
        params: &TransformParams,
    ) -> Array3<f32> {
        let mut out = Array3::zeros(image.raw_dim());
        match out.as_slice_mut() {
            Some(slice) => self.transform_into_slice(image, params, slice),
            None => unreachable!("a new array is in standard layout"),
        }
        out
    }

    /// [`apply_transform`](Self::apply_transform) into a buffer of the same
    /// shape as `image`, allocating nothing when both are in standard
    /// (row-major) layout.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] when `out` and `image` differ in shape.
    pub fn apply_transform_into<E: Element>(
        &self,
        image: ArrayView3<'_, E>,
        params: &TransformParams,
        mut out: ArrayViewMut3<'_, f32>,
    ) -> Result<()> {
        if out.shape() != image.shape() {
            return Err(Error::shape(
                "ImageDataGenerator::apply_transform_into",
                format!(
                    "an output of the input's shape {}",
                    format_shape(image.shape())
                ),
                out.shape(),
            ));
        }
        match out.as_slice_mut() {
            Some(slice) => self.transform_into_slice(image, params, slice),
            None => out.assign(&self.apply_transform(image, params)),
        }
        Ok(())
    }

    /// Transforms `image` into `out`, its values in row-major order.
    pub(crate) fn transform_into_slice<E: Element>(
        &self,
        image: ArrayView3<'_, E>,
        params: &TransformParams,
        out: &mut [f32],
    ) {
        let (height, width, channels) = image.dim();
        let source = image.as_standard_layout();
        let Some(source) = source.as_slice() else {
            unreachable!("a standard-layout array is one contiguous slice");
        };
        let shape = [height, width, channels];
        warp(source, shape, params, self.fill_mode, self.cval, out);
        adjust_values(params, out);
    }
}

/// The channel shift and the brightness of `params`, applied to an image
/// whose geometry is done.
pub(super) fn adjust_values(params: &TransformParams, values: &mut [f32]) {
    if let Some(intensity) = params.channel_shift_intensity {
        intensity::shift_channels(values, intensity as f32);
    }
    if let Some(factor) = params.brightness {
        intensity::brighten(values, factor as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{stream, Purpose};

    fn invalid_name<T: std::fmt::Debug>(result: Result<T>) -> String {
        match result {
            Err(Error::InvalidArgument { name, .. }) => name,
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_bad_option() {
        let bad = [
            (
                ImageDataGenerator::new().rotation_range(-1.0),
                "rotation_range",
            ),
            (
                ImageDataGenerator::new().width_shift_range(f64::NAN),
                "width_shift_range",
            ),
            (
                ImageDataGenerator::new().height_shift_values(vec![]),
                "height_shift_range",
            ),
            (
                ImageDataGenerator::new().shear_range(f64::INFINITY),
                "shear_range",
            ),
            (ImageDataGenerator::new().zoom_range(1.0), "zoom_range"),
            (
                ImageDataGenerator::new().zoom_range_pair(1.2, 0.8),
                "zoom_range",
            ),
            (ImageDataGenerator::new().cval(f32::NAN), "cval"),
            (ImageDataGenerator::new().rescale(0.0), "rescale"),
        ];
        for (generator, name) in bad {
            assert_eq!(invalid_name(generator.validate()), name);
        }
    }

    #[test]
    fn flips_draw_even_when_disabled() {
        let plain = ImageDataGenerator::new().rotation_range(10.0);
        let flipping = plain.clone().horizontal_flip(true);
        // The flips are drawn last, so the other parameters are unchanged.
        let a = plain.random_transform((8, 8), &mut stream(1, Purpose::Augment, 0, 0));
        let b = flipping.random_transform((8, 8), &mut stream(1, Purpose::Augment, 0, 0));
        assert_eq!(a.theta, b.theta);
        assert!(!a.flip_horizontal);
    }

    #[test]
    fn shift_values_are_drawn_with_both_signs() {
        let generator = ImageDataGenerator::new().width_shift_values(vec![2.0]);
        let draws: Vec<f64> = (0..64)
            .map(|i| {
                generator
                    .random_transform((4, 4), &mut stream(0, Purpose::Augment, 0, i))
                    .tx
            })
            .collect();
        assert!(draws.iter().all(|&d| d == 2.0 || d == -2.0));
        assert!(draws.contains(&2.0) && draws.contains(&-2.0));
    }

    #[test]
    fn the_configuration_round_trips_through_json() {
        let generator = ImageDataGenerator::new()
            .rotation_range(5.0)
            .fill_mode(FillMode::Wrap);
        let json = serde_json::to_string(&generator).unwrap();
        let back: ImageDataGenerator = serde_json::from_str(&json).unwrap();
        assert_eq!(back, generator);
    }
}
