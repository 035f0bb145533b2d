//! Average pooling over 2-D windows.

use ndarray::{ArrayD, ArrayViewD, Dimension};
use rand::RngCore;
use serde_json::Value;

use super::pooling::Pooling;
use super::window::Padding;
use super::{resize, Layer};
use crate::Result;

/// Keras' `AveragePooling2D`: the mean of each `pool_size` window of each
/// channel.
///
/// With `same` padding, a window that reaches into the padding averages
/// the input values it covers only, as Keras does: a 3x3 window over a
/// corner divides the sum of its 4 input values by 4, not by 9. The
/// gradient of a window's output goes to each value it averaged, divided by
/// their number.
///
/// # Shapes
///
/// Input `(batch, height, width, channels)` (Keras' `channels_last`),
/// output `(batch, out_height, out_width, channels)`, where each output
/// side is as [`Padding`] says.
///
/// # Limitations
///
/// Images are channels-last only: [`from_config`](AveragePooling2D::from_config)
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
///     .input_shape([4, 4, 1])
///     .add(AveragePooling2D::new((2, 2)));
/// let x = Array4::from_shape_fn((1, 4, 4, 1), |(_, r, c, _)| (r * 4 + c) as f32);
/// let y = model.predict(&x)?;
/// assert_eq!(y.iter().copied().collect::<Vec<_>>(), [2.5, 4.5, 10.5, 12.5]);
/// assert_eq!(model.layers()[0].name(), "average_pooling2d");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AveragePooling2D {
    pooling: Pooling,
}

impl AveragePooling2D {
    /// A layer averaging each window of `pool_size`, `(height, width)`, with
    /// strides equal to the pool size and `valid` padding. The sizes are
    /// checked when the layer is built.
    pub fn new(pool_size: (usize, usize)) -> Self {
        AveragePooling2D {
            pooling: Pooling::new("AveragePooling2D", pool_size),
        }
    }

    /// How far the window moves, `(rows, columns)` (default: the pool size,
    /// as in Keras).
    pub fn strides(mut self, strides: (usize, usize)) -> Self {
        self.pooling.set_strides(strides);
        self
    }

    /// How the borders are treated (default [`Padding::Valid`]).
    pub fn padding(mut self, padding: Padding) -> Self {
        self.pooling.set_padding(padding);
        self
    }

    /// The layer's name (default: given by the model, `average_pooling2d`,
    /// `average_pooling2d_1`...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.pooling.set_name(name.into());
        self
    }

    /// The window, `(height, width)`.
    pub fn pool_size(&self) -> (usize, usize) {
        self.pooling.pool_size()
    }

    /// The strides used: those given, or the pool size.
    pub fn strides_used(&self) -> (usize, usize) {
        self.pooling.strides_used()
    }

    /// The output shape, `(out_height, out_width, channels)`, for samples
    /// of `input_shape`, `(height, width, channels)`, batch axis left out.
    ///
    /// # Errors
    ///
    /// As [`build`](Layer::build): [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a pool
    /// size or stride with a zero side, and [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for an
    /// input that is not an image or, with `valid` padding, is smaller than
    /// the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{AveragePooling2D, Padding};
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let layer = AveragePooling2D::new((4, 3)).strides((2, 2)).padding(Padding::Same);
    /// assert_eq!(layer.compute_output_shape(&[5, 4, 2])?, vec![3, 2, 2]);
    /// assert!(AveragePooling2D::new((2, 0)).compute_output_shape(&[5, 4, 2]).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.pooling.output_shape(input_shape)
    }

    /// Builds a layer from its [`config`](Layer::config), the fields Keras
    /// names: `pool_size` (`[rows, columns]` or one number) is required;
    /// `name`, `strides` (null for the pool size) and `padding` (`"valid"`,
    /// `"same"`) are optional, and Keras' `data_format` is accepted as
    /// `"channels_last"` only.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming the field when the config is not
    /// an object, `pool_size` is missing, a field has the wrong type or a
    /// value kerust does not support, or a field is not one of these.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{AveragePooling2D, Layer};
    /// use serde_json::json;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let config = json!({ "name": "avg", "pool_size": 3, "strides": [1, 1] });
    /// let layer = AveragePooling2D::from_config(&config)?;
    /// assert_eq!(layer.config()["pool_size"], json!([3, 3]));
    /// let wrong = AveragePooling2D::from_config(&json!({ "pool_size": 2, "pool": 3 }));
    /// assert!(wrong.err().is_some_and(|e| e.to_string().contains("`pool`")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: &Value) -> Result<Self> {
        Ok(AveragePooling2D {
            pooling: Pooling::from_config("AveragePooling2D", config)?,
        })
    }
}

impl Layer for AveragePooling2D {
    fn class_name(&self) -> &str {
        "AveragePooling2D"
    }

    fn name(&self) -> &str {
        self.pooling.name()
    }

    fn set_name(&mut self, name: String) {
        self.pooling.set_name(name);
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
        let g = self.pooling.built_geometry(&input)?;
        let batch = input.shape()[0];
        let input = input.as_standard_layout();
        let x = input.as_slice().expect("standard layout");
        resize(output, &[batch, g.out_height, g.out_width, g.channels]);
        let y = output
            .as_slice_mut()
            .expect("`resize` makes standard-layout arrays");
        for (cell, means) in y.chunks_exact_mut(g.channels).enumerate() {
            means.fill(0.0);
            let mut count = 0_usize;
            for offset in g.window_offsets(cell) {
                let values = &x[offset..offset + g.channels];
                means.iter_mut().zip(values).for_each(|(m, &v)| *m += v);
                count += 1;
            }
            // Every window covers at least one input value: `Padding`
            // never pads by a whole window.
            let count = count.max(1) as f32;
            means.iter_mut().for_each(|m| *m /= count);
        }
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayViewD<'_, f32>,
        _output: ArrayViewD<'_, f32>,
        grad_output: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()> {
        let g = self.pooling.backward_geometry(&input, &grad_output)?;
        let Some(grad_input) = grad_input else {
            return Ok(());
        };
        // `IxDyn` keeps up to four axes inline: no allocation per batch.
        let input_shape = input.raw_dim();
        let grad_output = grad_output.as_standard_layout();
        let dy = grad_output.as_slice().expect("standard layout");
        resize(grad_input, input_shape.slice());
        let dx = grad_input
            .as_slice_mut()
            .expect("`resize` makes standard-layout arrays");
        dx.fill(0.0);
        for (cell, grads) in dy.chunks_exact(g.channels).enumerate() {
            let count = g.window_offsets(cell).count().max(1) as f32;
            for offset in g.window_offsets(cell) {
                let target = &mut dx[offset..offset + g.channels];
                target
                    .iter_mut()
                    .zip(grads)
                    .for_each(|(t, &grad)| *t += grad / count);
            }
        }
        Ok(())
    }

    fn config(&self) -> Value {
        self.pooling.config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{stream, Purpose};
    use ndarray::Array4;

    fn built(layer: AveragePooling2D, input_shape: &[usize]) -> AveragePooling2D {
        let mut layer = layer;
        layer
            .build(input_shape, &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        layer
    }

    #[test]
    fn same_padding_divides_by_the_values_a_window_covers() {
        let layer = built(
            AveragePooling2D::new((2, 2)).padding(Padding::Same),
            &[3, 3, 1],
        );
        let x = Array4::from_shape_fn((1, 3, 3, 1), |(_, r, c, _)| (r * 3 + c) as f32).into_dyn();
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, false).unwrap();
        // Windows (0, 1, 3, 4), (2, 5), (6, 7) and (8) alone.
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), [2.0, 3.5, 6.5, 8.0]);
    }

    #[test]
    fn each_value_of_a_window_gets_its_share_of_the_gradient() {
        let mut layer = built(
            AveragePooling2D::new((2, 2)).padding(Padding::Same),
            &[3, 3, 1],
        );
        let x = Array4::<f32>::zeros((1, 3, 3, 1)).into_dyn();
        let y = ArrayD::zeros(vec![1, 2, 2, 1]);
        let dy = ArrayD::from_shape_vec(vec![1, 2, 2, 1], vec![4.0, 2.0, 6.0, 1.0]).unwrap();
        let mut dx = ArrayD::zeros(vec![0]);
        layer
            .backward(x.view(), y.view(), dy.view(), Some(&mut dx))
            .unwrap();
        assert_eq!(
            dx.iter().copied().collect::<Vec<_>>(),
            [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 1.0]
        );
    }
}
