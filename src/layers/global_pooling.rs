//! Global pooling: one value per channel of an image, its mean or its
//! maximum over every row and column.

use ndarray::{ArrayD, ArrayViewD, Dimension};
use rand::RngCore;
use serde_json::{json, Value};

use super::config::Fields;
use super::{check_input, resize, Layer};
use crate::error::format_batch_shape;
use crate::{Error, Result};

/// The fields of a global pooling config, and Keras' `data_format`,
/// accepted at its default.
const FIELDS: &[&str] = &["name", "keepdims", "data_format"];

/// What a global pooling layer takes of each channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reduction {
    Mean,
    Max,
}

/// What the two global pooling layers share: the options, the shape built
/// for, and the passes, which differ by their [`Reduction`].
#[derive(Debug, Clone)]
struct GlobalPooling {
    name: String,
    keepdims: bool,
    input_shape: Option<[usize; 3]>,
}

impl GlobalPooling {
    fn new() -> Self {
        GlobalPooling {
            name: String::new(),
            keepdims: false,
            input_shape: None,
        }
    }

    fn from_config(class_name: &str, config: &Value) -> Result<Self> {
        let fields = Fields::new(class_name, config, FIELDS)?;
        fields.only_default(
            "data_format",
            &[json!("channels_last")],
            &format!("kerust's {class_name} takes channels-last images only"),
        )?;
        let mut pooling = GlobalPooling::new();
        pooling.name = fields.name()?;
        pooling.keepdims = fields.optional("keepdims")?.unwrap_or(false);
        Ok(pooling)
    }

    fn config(&self) -> Value {
        json!({ "name": self.name, "keepdims": self.keepdims })
    }

    /// The output shape for samples of `input_shape`, which must be an
    /// image `(height, width, channels)` with no empty side.
    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let image = image_shape(input_shape).ok_or_else(|| Error::ShapeMismatch {
            layer: self.name.clone(),
            expected: "(None, height, width, channels), each at least 1".to_string(),
            got: format_batch_shape(input_shape),
        })?;
        Ok(self.output_of(image))
    }

    fn output_of(&self, [_, _, channels]: [usize; 3]) -> Vec<usize> {
        if self.keepdims {
            vec![1, 1, channels]
        } else {
            vec![channels]
        }
    }

    fn build(&mut self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let output = self.output_shape(input_shape)?;
        self.input_shape = image_shape(input_shape);
        Ok(output)
    }

    /// The shape built for, after checking that `input` is a batch of it.
    fn built_shape(&self, input: &ArrayViewD<'_, f32>) -> Result<[usize; 3]> {
        check_input(&self.name, self.input_shape.as_ref().map(|s| &s[..]), input)?;
        Ok(self.input_shape.expect("checked by `check_input`"))
    }

    /// `(batch, channels)`, or `(batch, 1, 1, channels)` with `keepdims`.
    fn batch_output_shape(&self, batch: usize, image: [usize; 3]) -> Vec<usize> {
        let mut shape = vec![batch];
        shape.extend(self.output_of(image));
        shape
    }

    fn forward(
        &self,
        reduction: Reduction,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
    ) -> Result<()> {
        let image = self.built_shape(&input)?;
        let [height, width, channels] = image;
        let batch = input.shape()[0];
        let input = input.as_standard_layout();
        let x = input.as_slice().expect("standard layout");
        resize(output, &self.batch_output_shape(batch, image));
        let y = output
            .as_slice_mut()
            .expect("`resize` makes standard-layout arrays");
        let pixels = height * width;
        for (sample, pooled) in x
            .chunks_exact(pixels * channels)
            .zip(y.chunks_exact_mut(channels))
        {
            for (channel, value) in pooled.iter_mut().enumerate() {
                let values = sample.iter().skip(channel).step_by(channels);
                *value = match reduction {
                    // Summed in f64: a whole image is many values.
                    Reduction::Mean => {
                        let sum: f64 = values.map(|&v| f64::from(v)).sum();
                        (sum / pixels as f64) as f32
                    }
                    Reduction::Max => values.fold(f32::NEG_INFINITY, |m, &v| m.max(v)),
                };
            }
        }
        Ok(())
    }

    fn backward(
        &self,
        reduction: Reduction,
        input: ArrayViewD<'_, f32>,
        output: ArrayViewD<'_, f32>,
        grad_output: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()> {
        let image = self.built_shape(&input)?;
        let [height, width, channels] = image;
        let batch = input.shape()[0];
        let expected = self.batch_output_shape(batch, image);
        if grad_output.shape() != expected || output.shape() != expected {
            return Err(Error::shape(
                &self.name,
                crate::error::format_shape(&expected),
                grad_output.shape(),
            ));
        }
        let Some(grad_input) = grad_input else {
            return Ok(());
        };
        // `IxDyn` keeps up to four axes inline: no allocation per batch.
        let input_shape = input.raw_dim();
        let input = input.as_standard_layout();
        let x = input.as_slice().expect("standard layout");
        let output = output.as_standard_layout();
        let y = output.as_slice().expect("standard layout");
        let grad_output = grad_output.as_standard_layout();
        let dy = grad_output.as_slice().expect("standard layout");
        resize(grad_input, input_shape.slice());
        let dx = grad_input
            .as_slice_mut()
            .expect("`resize` makes standard-layout arrays");
        let pixels = height * width;
        let image_len = pixels * channels;
        for n in 0..batch {
            let sample = &x[n * image_len..(n + 1) * image_len];
            let grads = &mut dx[n * image_len..(n + 1) * image_len];
            for channel in 0..channels {
                let at = n * channels + channel;
                let share = match reduction {
                    Reduction::Mean => dy[at] / pixels as f32,
                    Reduction::Max => {
                        let ties = sample
                            .iter()
                            .skip(channel)
                            .step_by(channels)
                            .filter(|&&v| v == y[at])
                            .count();
                        dy[at] / ties.max(1) as f32
                    }
                };
                for (g, &v) in grads
                    .iter_mut()
                    .skip(channel)
                    .step_by(channels)
                    .zip(sample.iter().skip(channel).step_by(channels))
                {
                    *g = match reduction {
                        Reduction::Mean => share,
                        Reduction::Max if v == y[at] => share,
                        Reduction::Max => 0.0,
                    };
                }
            }
        }
        Ok(())
    }
}

/// `input_shape` as an image with no empty side, or `None`.
fn image_shape(input_shape: &[usize]) -> Option<[usize; 3]> {
    match *input_shape {
        [height, width, channels] if height > 0 && width > 0 && channels > 0 => {
            Some([height, width, channels])
        }
        _ => None,
    }
}

/// Keras' `GlobalAveragePooling2D`: the mean of each channel over every row
/// and column of an image.
///
/// The mean is summed in `f64` and rounded once to `f32`. Each input value
/// receives the gradient of its channel's mean divided by `height * width`.
///
/// # Shapes
///
/// Input `(batch, height, width, channels)` (Keras' `channels_last`),
/// output `(batch, channels)`, or `(batch, 1, 1, channels)` with
/// [`keepdims`](GlobalAveragePooling2D::keepdims).
///
/// # Limitations
///
/// Images are channels-last only: [`from_config`](GlobalAveragePooling2D::from_config)
/// refuses any `data_format` but `"channels_last"`.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
/// use ndarray::Array4;
///
/// # fn main() -> kerust::Result<()> {
/// let mut model = Sequential::new()
///     .input_shape([2, 2, 2])
///     .add(GlobalAveragePooling2D::new());
/// let x = Array4::from_shape_fn((1, 2, 2, 2), |(_, r, c, ch)| (r * 2 + c + 10 * ch) as f32);
/// assert_eq!(model.predict(&x)?.iter().copied().collect::<Vec<_>>(), [1.5, 11.5]);
/// assert_eq!(model.output_shape()?, vec![2]);
/// assert_eq!(model.layers()[0].name(), "global_average_pooling2d");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GlobalAveragePooling2D {
    pooling: GlobalPooling,
}

impl Default for GlobalAveragePooling2D {
    fn default() -> Self {
        Self::new()
    }
}

impl GlobalAveragePooling2D {
    /// A layer averaging each channel, without `keepdims`.
    pub fn new() -> Self {
        GlobalAveragePooling2D {
            pooling: GlobalPooling::new(),
        }
    }

    /// Whether the output keeps the row and column axes, each of length 1
    /// (default false, as in Keras).
    pub fn keepdims(mut self, keepdims: bool) -> Self {
        self.pooling.keepdims = keepdims;
        self
    }

    /// The layer's name (default: given by the model,
    /// `global_average_pooling2d`, `global_average_pooling2d_1`...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.pooling.name = name.into();
        self
    }

    /// The output shape for samples of `input_shape`, `(height, width,
    /// channels)`: `(channels,)`, or `(1, 1, channels)` with `keepdims`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for an input that is not an image with at
    /// least one row, column and channel.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::GlobalAveragePooling2D;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let layer = GlobalAveragePooling2D::new().keepdims(true);
    /// assert_eq!(layer.compute_output_shape(&[7, 7, 16])?, vec![1, 1, 16]);
    /// assert!(layer.compute_output_shape(&[49, 16]).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.pooling.output_shape(input_shape)
    }

    /// Builds a layer from its [`config`](Layer::config): `name` and
    /// `keepdims` (default false) are optional, and Keras' `data_format` is
    /// accepted as `"channels_last"` only.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the field when the config is not
    /// an object, a field has the wrong type or a value kerust does not
    /// support, or a field is not one of these.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{GlobalAveragePooling2D, Layer};
    /// use serde_json::json;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let layer = GlobalAveragePooling2D::from_config(&json!({ "keepdims": true }))?;
    /// assert_eq!(layer.config()["keepdims"], json!(true));
    /// assert!(GlobalAveragePooling2D::from_config(&json!({ "keep_dims": true })).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: &Value) -> Result<Self> {
        Ok(GlobalAveragePooling2D {
            pooling: GlobalPooling::from_config("GlobalAveragePooling2D", config)?,
        })
    }
}

impl Layer for GlobalAveragePooling2D {
    fn class_name(&self) -> &str {
        "GlobalAveragePooling2D"
    }

    fn name(&self) -> &str {
        &self.pooling.name
    }

    fn set_name(&mut self, name: String) {
        self.pooling.name = name;
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut dyn RngCore) -> Result<Vec<usize>> {
        self.pooling.build(input_shape)
    }

    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        _training: bool,
    ) -> Result<()> {
        self.pooling.forward(Reduction::Mean, input, output)
    }

    fn backward(
        &mut self,
        input: ArrayViewD<'_, f32>,
        output: ArrayViewD<'_, f32>,
        grad_output: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()> {
        self.pooling
            .backward(Reduction::Mean, input, output, grad_output, grad_input)
    }

    fn config(&self) -> Value {
        self.pooling.config()
    }
}

/// Keras' `GlobalMaxPooling2D`: the largest value of each channel over
/// every row and column of an image.
///
/// When a channel's maximum appears more than once, its gradient is shared
/// equally among those positions, as in Keras on JAX (whose `max` shares
/// it so). This differs from [`MaxPooling2D`](super::MaxPooling2D), which
/// gives a window's gradient to its first maximum, as Keras does there.
///
/// # Shapes
///
/// Input `(batch, height, width, channels)` (Keras' `channels_last`),
/// output `(batch, channels)`, or `(batch, 1, 1, channels)` with
/// [`keepdims`](GlobalMaxPooling2D::keepdims).
///
/// # Limitations
///
/// Images are channels-last only: [`from_config`](GlobalMaxPooling2D::from_config)
/// refuses any `data_format` but `"channels_last"`.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
/// use ndarray::Array4;
///
/// # fn main() -> kerust::Result<()> {
/// let mut model = Sequential::new()
///     .input_shape([2, 2, 2])
///     .add(GlobalMaxPooling2D::new().keepdims(true));
/// let x = Array4::from_shape_fn((1, 2, 2, 2), |(_, r, c, ch)| {
///     (r * 2 + c) as f32 - 9.0 * ch as f32
/// });
/// assert_eq!(model.predict(&x)?.iter().copied().collect::<Vec<_>>(), [3.0, -6.0]);
/// assert_eq!(model.output_shape()?, vec![1, 1, 2]);
/// assert_eq!(model.layers()[0].name(), "global_max_pooling2d");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GlobalMaxPooling2D {
    pooling: GlobalPooling,
}

impl Default for GlobalMaxPooling2D {
    fn default() -> Self {
        Self::new()
    }
}

impl GlobalMaxPooling2D {
    /// A layer taking the maximum of each channel, without `keepdims`.
    pub fn new() -> Self {
        GlobalMaxPooling2D {
            pooling: GlobalPooling::new(),
        }
    }

    /// Whether the output keeps the row and column axes, each of length 1
    /// (default false, as in Keras).
    pub fn keepdims(mut self, keepdims: bool) -> Self {
        self.pooling.keepdims = keepdims;
        self
    }

    /// The layer's name (default: given by the model,
    /// `global_max_pooling2d`, `global_max_pooling2d_1`...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.pooling.name = name.into();
        self
    }

    /// The output shape for samples of `input_shape`, `(height, width,
    /// channels)`: `(channels,)`, or `(1, 1, channels)` with `keepdims`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for an input that is not an image with at
    /// least one row, column and channel.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::GlobalMaxPooling2D;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// assert_eq!(GlobalMaxPooling2D::new().compute_output_shape(&[5, 3, 8])?, vec![8]);
    /// assert!(GlobalMaxPooling2D::new().compute_output_shape(&[5, 0, 8]).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.pooling.output_shape(input_shape)
    }

    /// Builds a layer from its [`config`](Layer::config): `name` and
    /// `keepdims` (default false) are optional, and Keras' `data_format` is
    /// accepted as `"channels_last"` only.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the field when the config is not
    /// an object, a field has the wrong type or a value kerust does not
    /// support, or a field is not one of these.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{GlobalMaxPooling2D, Layer};
    /// use serde_json::json;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let layer = GlobalMaxPooling2D::from_config(&json!({ "name": "gmp" }))?;
    /// assert_eq!(layer.config(), json!({ "name": "gmp", "keepdims": false }));
    /// let first = json!({ "data_format": "channels_first" });
    /// assert!(GlobalMaxPooling2D::from_config(&first).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: &Value) -> Result<Self> {
        Ok(GlobalMaxPooling2D {
            pooling: GlobalPooling::from_config("GlobalMaxPooling2D", config)?,
        })
    }
}

impl Layer for GlobalMaxPooling2D {
    fn class_name(&self) -> &str {
        "GlobalMaxPooling2D"
    }

    fn name(&self) -> &str {
        &self.pooling.name
    }

    fn set_name(&mut self, name: String) {
        self.pooling.name = name;
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut dyn RngCore) -> Result<Vec<usize>> {
        self.pooling.build(input_shape)
    }

    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        _training: bool,
    ) -> Result<()> {
        self.pooling.forward(Reduction::Max, input, output)
    }

    fn backward(
        &mut self,
        input: ArrayViewD<'_, f32>,
        output: ArrayViewD<'_, f32>,
        grad_output: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()> {
        self.pooling
            .backward(Reduction::Max, input, output, grad_output, grad_input)
    }

    fn config(&self) -> Value {
        self.pooling.config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{stream, Purpose};

    #[test]
    fn a_tied_maximum_shares_its_gradient_equally() {
        let mut layer = GlobalMaxPooling2D::new();
        layer
            .build(&[2, 2, 1], &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        let x = ArrayD::from_shape_vec(vec![1, 2, 2, 1], vec![4.0, 1.0, 4.0, 4.0]).unwrap();
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, true).unwrap();
        assert_eq!(y.shape(), &[1, 1]);
        let dy = ArrayD::from_elem(vec![1, 1], 3.0);
        let mut dx = ArrayD::zeros(vec![0]);
        layer
            .backward(x.view(), y.view(), dy.view(), Some(&mut dx))
            .unwrap();
        assert_eq!(dx.iter().copied().collect::<Vec<_>>(), [1.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn the_mean_covers_every_pixel_of_each_sample_and_channel() {
        let layer = {
            let mut l = GlobalAveragePooling2D::new().keepdims(true);
            l.build(&[1, 3, 2], &mut stream(0, Purpose::Init, 0, 0))
                .unwrap();
            l
        };
        let x = ArrayD::from_shape_vec(
            vec![2, 1, 3, 2],
            vec![
                1.0, 10.0, 2.0, 20.0, 3.0, 30.0, -1.0, 0.0, -2.0, 0.0, -6.0, 3.0,
            ],
        )
        .unwrap();
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, false).unwrap();
        assert_eq!(y.shape(), &[2, 1, 1, 2]);
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            [2.0, 20.0, -3.0, 1.0]
        );
    }
}
