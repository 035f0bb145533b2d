//! Pooling over 2-D windows: what the windowed pooling layers share, and
//! [`MaxPooling2D`].

use ndarray::{ArrayD, ArrayViewD, Dimension};
use rand::RngCore;
use serde_json::{json, Value};

use super::config::Fields;
use super::window::{check_pair, Geometry, Padding};
use super::{check_input, resize, Layer};
use crate::{Error, Result};

/// The fields of a windowed pooling config, and Keras' `data_format`,
/// accepted at its default.
const FIELDS: &[&str] = &["name", "pool_size", "strides", "padding", "data_format"];

/// What [`MaxPooling2D`] and [`AveragePooling2D`](super::AveragePooling2D)
/// share: the options, their config, the geometry built for and the checks
/// of a batch against it. The layers differ only by their passes.
#[derive(Debug, Clone)]
pub(crate) struct Pooling {
    class_name: &'static str,
    name: String,
    pool_size: (usize, usize),
    strides: Option<(usize, usize)>,
    padding: Padding,
    geometry: Option<Geometry>,
}

impl Pooling {
    pub(crate) fn new(class_name: &'static str, pool_size: (usize, usize)) -> Self {
        Pooling {
            class_name,
            name: String::new(),
            pool_size,
            strides: None,
            padding: Padding::Valid,
            geometry: None,
        }
    }

    /// Reads the fields Keras names; see the layers' `from_config`.
    pub(crate) fn from_config(class_name: &'static str, config: &Value) -> Result<Self> {
        let fields = Fields::new(class_name, config, FIELDS)?;
        fields.only_default(
            "data_format",
            &[json!("channels_last")],
            &format!("kerust's {class_name} takes channels-last images only"),
        )?;
        let pool_size = fields.pair("pool_size")?.ok_or_else(|| {
            Error::invalid(
                "config",
                config,
                format!("the config of a {class_name} needs a `pool_size`"),
            )
        })?;
        let mut pooling = Pooling::new(class_name, pool_size);
        pooling.name = fields.name()?;
        pooling.strides = fields.pair("strides")?;
        if let Some(padding) = fields.optional("padding")? {
            pooling.padding = padding;
        }
        Ok(pooling)
    }

    pub(crate) fn config(&self) -> Value {
        let (sh, sw) = self.strides_used();
        json!({
            "name": self.name,
            "pool_size": [self.pool_size.0, self.pool_size.1],
            "strides": [sh, sw],
            "padding": self.padding,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn set_name(&mut self, name: String) {
        self.name = name;
    }

    pub(crate) fn set_strides(&mut self, strides: (usize, usize)) {
        self.strides = Some(strides);
    }

    pub(crate) fn set_padding(&mut self, padding: Padding) {
        self.padding = padding;
    }

    pub(crate) fn pool_size(&self) -> (usize, usize) {
        self.pool_size
    }

    /// The strides given, or the pool size.
    pub(crate) fn strides_used(&self) -> (usize, usize) {
        self.strides.unwrap_or(self.pool_size)
    }

    /// `(out_height, out_width, channels)` for samples of `input_shape`.
    pub(crate) fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let g = self.geometry_of(input_shape)?;
        Ok(vec![g.out_height, g.out_width, g.channels])
    }

    pub(crate) fn build(&mut self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let g = self.geometry_of(input_shape)?;
        self.geometry = Some(g);
        Ok(vec![g.out_height, g.out_width, g.channels])
    }

    fn geometry_of(&self, input_shape: &[usize]) -> Result<Geometry> {
        check_pair("pool_size", self.pool_size, self.class_name)?;
        check_pair("strides", self.strides_used(), self.class_name)?;
        Geometry::new(
            &self.name,
            "pool",
            input_shape,
            self.pool_size,
            self.strides_used(),
            self.padding,
            false,
        )
    }

    /// The geometry built for, after checking that `input` is a batch of
    /// the samples it was built for.
    pub(crate) fn built_geometry(&self, input: &ArrayViewD<'_, f32>) -> Result<Geometry> {
        let built = self.geometry.map(|g| g.input_shape());
        check_input(&self.name, built.as_ref().map(|s| &s[..]), input)?;
        Ok(self.geometry.expect("checked by `check_input`"))
    }

    /// The geometry built for, after checking `input` and that
    /// `grad_output` has the shape of the outputs of `input`.
    pub(crate) fn backward_geometry(
        &self,
        input: &ArrayViewD<'_, f32>,
        grad_output: &ArrayViewD<'_, f32>,
    ) -> Result<Geometry> {
        let g = self.built_geometry(input)?;
        let expected = [input.shape()[0], g.out_height, g.out_width, g.channels];
        if grad_output.shape() != expected {
            return Err(Error::shape(
                &self.name,
                crate::error::format_shape(&expected),
                grad_output.shape(),
            ));
        }
        Ok(g)
    }
}

/// Keras' `MaxPooling2D`: the largest value of each `pool_size` window of
/// each channel.
///
/// The gradient of a window's output goes to the position of its maximum,
/// and to the first such position in row-major order (top to bottom, then
/// left to right) when the maximum appears more than once, as in Keras on
/// JAX. With `same` padding, the padding is not part of any window. A NaN
/// is passed over where Keras would give NaN, and a window of NaNs alone
/// gives negative infinity; the model refuses inputs that are not finite.
///
/// # Shapes
///
/// Input `(batch, height, width, channels)` (Keras' `channels_last`),
/// output `(batch, out_height, out_width, channels)`, where each output
/// side is as [`Padding`] says.
///
/// # Limitations
///
/// Images are channels-last only: [`from_config`](MaxPooling2D::from_config)
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
///     .add(MaxPooling2D::new((2, 2)));
/// let x = Array4::from_shape_fn((1, 4, 4, 1), |(_, r, c, _)| (r * 4 + c) as f32);
/// let y = model.predict(&x)?;
/// assert_eq!(y.iter().copied().collect::<Vec<_>>(), [5.0, 7.0, 13.0, 15.0]);
/// assert_eq!(model.layers()[0].name(), "max_pooling2d");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MaxPooling2D {
    pooling: Pooling,
}

impl MaxPooling2D {
    /// A layer taking the maximum of each window of `pool_size`, `(height,
    /// width)`, with strides equal to the pool size and `valid` padding.
    /// The sizes are checked when the layer is built.
    pub fn new(pool_size: (usize, usize)) -> Self {
        MaxPooling2D {
            pooling: Pooling::new("MaxPooling2D", pool_size),
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

    /// The layer's name (default: given by the model, `max_pooling2d`,
    /// `max_pooling2d_1`...).
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
    /// As [`build`](Layer::build): [`Error::InvalidArgument`] for a pool
    /// size or stride with a zero side, and [`Error::ShapeMismatch`] for an
    /// input that is not an image or, with `valid` padding, is smaller than
    /// the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{MaxPooling2D, Padding};
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let layer = MaxPooling2D::new((3, 3)).strides((2, 2)).padding(Padding::Same);
    /// assert_eq!(layer.compute_output_shape(&[5, 6, 2])?, vec![3, 3, 2]);
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
    /// [`Error::InvalidArgument`] naming the field when the config is not
    /// an object, `pool_size` is missing, a field has the wrong type or a
    /// value kerust does not support, or a field is not one of these.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{Layer, MaxPooling2D};
    /// use serde_json::json;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let layer = MaxPooling2D::from_config(&json!({ "name": "pool", "pool_size": [2, 3] }))?;
    /// assert_eq!(layer.config()["strides"], json!([2, 3]));
    /// assert!(MaxPooling2D::from_config(&json!({ "pool_size": 2, "size": 3 })).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: &Value) -> Result<Self> {
        Ok(MaxPooling2D {
            pooling: Pooling::from_config("MaxPooling2D", config)?,
        })
    }
}

impl Layer for MaxPooling2D {
    fn class_name(&self) -> &str {
        "MaxPooling2D"
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
        for (cell, maxima) in y.chunks_exact_mut(g.channels).enumerate() {
            maxima.fill(f32::NEG_INFINITY);
            for offset in g.window_offsets(cell) {
                let values = &x[offset..offset + g.channels];
                // Strictly greater: the first maximum stays.
                for (m, &v) in maxima.iter_mut().zip(values) {
                    if v > *m {
                        *m = v;
                    }
                }
            }
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
        let input = input.as_standard_layout();
        let x = input.as_slice().expect("standard layout");
        let grad_output = grad_output.as_standard_layout();
        let dy = grad_output.as_slice().expect("standard layout");
        resize(grad_input, input_shape.slice());
        let dx = grad_input
            .as_slice_mut()
            .expect("`resize` makes standard-layout arrays");
        dx.fill(0.0);
        for (cell, grads) in dy.chunks_exact(g.channels).enumerate() {
            for (channel, &grad) in grads.iter().enumerate() {
                // The same scan as `forward`'s, remembering where.
                let mut best = f32::NEG_INFINITY;
                let mut at = None;
                for offset in g.window_offsets(cell) {
                    let v = x[offset + channel];
                    if v > best {
                        best = v;
                        at = Some(offset + channel);
                    }
                }
                if let Some(at) = at {
                    dx[at] += grad;
                }
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

    #[test]
    fn the_gradient_goes_to_the_first_maximum_of_a_window() {
        let mut layer = MaxPooling2D::new((2, 2));
        layer
            .build(&[2, 2, 1], &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        let x = Array4::from_shape_vec((1, 2, 2, 1), vec![1.0, 7.0, 7.0, 2.0])
            .unwrap()
            .into_dyn();
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, true).unwrap();
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), [7.0]);
        let dy = ArrayD::from_elem(vec![1, 1, 1, 1], 3.0);
        let mut dx = ArrayD::zeros(vec![0]);
        layer
            .backward(x.view(), y.view(), dy.view(), Some(&mut dx))
            .unwrap();
        assert_eq!(dx.iter().copied().collect::<Vec<_>>(), [0.0, 3.0, 0.0, 0.0]);
    }

    #[test]
    fn same_padding_leaves_the_padding_out_of_the_maximum() {
        let mut layer = MaxPooling2D::new((2, 2)).padding(Padding::Same);
        layer
            .build(&[3, 3, 1], &mut stream(0, Purpose::Init, 0, 0))
            .unwrap();
        let x = Array4::from_elem((1, 3, 3, 1), -5.0_f32).into_dyn();
        let mut y = ArrayD::zeros(vec![0]);
        layer.forward(x.view(), &mut y, false).unwrap();
        assert_eq!(y.shape(), &[1, 2, 2, 1]);
        assert!(y.iter().all(|&v| v == -5.0), "{y}");
    }
}
