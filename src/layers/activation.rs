//! Activation layers: [`ReLU`], [`Softmax`], [`LeakyReLU`] and
//! [`ActivationLayer`], Keras' generic `Activation`.

use ndarray::{ArrayD, ArrayViewD, Zip};
use rand::RngCore;
use serde_json::{json, Value};

use super::config::Fields;
use super::flatten::name_from_config;
use super::{check_input, resize, Layer};
use crate::activations::Activation;
use crate::error::format_shape;
use crate::{Error, Result};

/// Shared body of the layers that apply an [`Activation`].
#[derive(Debug, Clone)]
struct Elementwise {
    name: String,
    activation: Activation,
    input_shape: Option<Vec<usize>>,
}

impl Elementwise {
    fn new(activation: Activation) -> Self {
        Elementwise {
            name: String::new(),
            activation,
            input_shape: None,
        }
    }

    fn check(&self, input: &ArrayViewD<'_, f32>) -> Result<()> {
        check_input(&self.name, self.input_shape.as_deref(), input)
    }

    fn forward(&self, input: ArrayViewD<'_, f32>, output: &mut ArrayD<f32>) -> Result<()> {
        self.check(&input)?;
        resize(output, input.shape());
        output.assign(&input);
        self.activation.apply(output.view_mut());
        Ok(())
    }

    fn backward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: ArrayViewD<'_, f32>,
        grad_output: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()> {
        self.check(&input)?;
        if grad_output.shape() != input.shape() || output.shape() != input.shape() {
            return Err(Error::shape(
                &self.name,
                format!("{:?}", input.shape()),
                grad_output.shape(),
            ));
        }
        if let Some(grad_input) = grad_input {
            resize(grad_input, input.shape());
            grad_input.assign(&grad_output);
            self.activation.backward(output, grad_input.view_mut());
        }
        Ok(())
    }

    fn backward_from_logits(
        &self,
        class_name: &str,
        input: ArrayViewD<'_, f32>,
        grad_logits: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()> {
        if self.activation != Activation::Softmax {
            return Err(Error::invalid(
                "backward_from_logits",
                class_name,
                "not a softmax",
            ));
        }
        self.check(&input)?;
        if let Some(grad_input) = grad_input {
            resize(grad_input, input.shape());
            grad_input.assign(&grad_logits);
        }
        Ok(())
    }
}

/// Implements [`Layer`] for a newtype over [`Elementwise`] of class
/// `$class`, whose config is `$config` of the body `$body`.
macro_rules! elementwise_layer {
    ($type:ident, $class:literal, |$body:ident| $config:expr) => {
        impl Layer for $type {
            fn class_name(&self) -> &str {
                $class
            }

            fn name(&self) -> &str {
                &self.0.name
            }

            fn set_name(&mut self, name: String) {
                self.0.name = name;
            }

            fn build(
                &mut self,
                input_shape: &[usize],
                _rng: &mut dyn RngCore,
            ) -> Result<Vec<usize>> {
                self.0.input_shape = Some(input_shape.to_vec());
                Ok(input_shape.to_vec())
            }

            fn forward(
                &self,
                input: ArrayViewD<'_, f32>,
                output: &mut ArrayD<f32>,
                _training: bool,
            ) -> Result<()> {
                self.0.forward(input, output)
            }

            fn backward(
                &mut self,
                input: ArrayViewD<'_, f32>,
                output: ArrayViewD<'_, f32>,
                grad_output: ArrayViewD<'_, f32>,
                grad_input: Option<&mut ArrayD<f32>>,
            ) -> Result<()> {
                self.0.backward(input, output, grad_output, grad_input)
            }

            fn config(&self) -> Value {
                let $body = &self.0;
                $config
            }

            fn ends_in_softmax(&self) -> bool {
                self.0.activation == Activation::Softmax
            }

            fn backward_from_logits(
                &mut self,
                input: ArrayViewD<'_, f32>,
                grad_logits: ArrayViewD<'_, f32>,
                grad_input: Option<&mut ArrayD<f32>>,
            ) -> Result<()> {
                self.0
                    .backward_from_logits($class, input, grad_logits, grad_input)
            }
        }
    };
}

macro_rules! activation_layer {
    ($(#[$doc:meta])* $type:ident, $activation:expr, $class:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $type(Elementwise);

        impl Default for $type {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $type {
            /// A new layer.
            pub fn new() -> Self {
                $type(Elementwise::new($activation))
            }

            #[doc = concat!("Builds a layer from its [`config`](Layer::config): `{\"name\": ...}`, \
                the name being optional.\n\n\
                # Errors\n\n\
                [`Error::InvalidArgument`] when the config is not a JSON object or its \
                `name` is not a string.\n\n\
                # Examples\n\n\
                ```\n\
                use kerust::layers::{", stringify!($type), ", Layer};\n\n\
                # fn main() -> kerust::Result<()> {\n\
                let config = serde_json::json!({ \"name\": \"act\" });\n\
                let layer = ", stringify!($type), "::from_config(&config)?;\n\
                assert_eq!(layer.name(), \"act\");\n\
                # Ok(())\n\
                # }\n\
                ```")]
            pub fn from_config(config: &Value) -> Result<Self> {
                let mut layer = Self::new();
                layer.0.name = name_from_config($class, config)?;
                Ok(layer)
            }
        }

        elementwise_layer!($type, $class, |body| json!({ "name": body.name }));
    };
}

activation_layer!(
    /// Rectified linear unit, `max(x, 0)`, element-wise.
    ///
    /// # Shapes
    ///
    /// Output shaped like the input.
    ReLU,
    Activation::Relu,
    "ReLU"
);

activation_layer!(
    /// Softmax over the last axis: each row becomes probabilities.
    ///
    /// Stable for any logits: `[1000, 1000]` gives `[0.5, 0.5]`.
    ///
    /// # Shapes
    ///
    /// Output shaped like the input.
    Softmax,
    Activation::Softmax,
    "Softmax"
);

/// Keras' `layers.Activation`: applies an [`Activation`] to its input, as
/// `keras.layers.Activation("tanh")` does. Named `ActivationLayer` in Rust
/// because [`Activation`], which it takes, is the function; its class name
/// in model files and summaries is Keras' `"Activation"`, and the model
/// names it `activation`, `activation_1`...
///
/// With [`Activation::Softmax`] it is a softmax over the last axis, like
/// [`Softmax`], and a model ending in it fuses it with a cross-entropy loss
/// as it does a [`Dense`](super::Dense) with a softmax.
///
/// # Shapes
///
/// Output shaped like the input.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let mut model = Sequential::new()
///     .input_shape([3])
///     .add(Dense::new(4))
///     .add(ActivationLayer::new(Activation::Tanh))
///     .add(Dense::new(2))
///     .add(ActivationLayer::new(Activation::Softmax));
/// model.build()?;
/// assert_eq!(model.layers()[1].name(), "activation");
/// assert_eq!(model.layers()[1].class_name(), "Activation");
/// assert_eq!(model.layers()[1].config()["activation"], "tanh");
///
/// let probabilities = model.predict(&array![[0.5_f32, -1.0, 2.0]])?;
/// assert!((probabilities.sum() - 1.0).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ActivationLayer(Elementwise);

impl ActivationLayer {
    /// A layer applying `activation`.
    pub fn new(activation: Activation) -> Self {
        ActivationLayer(Elementwise::new(activation))
    }

    /// The layer's name (default: given by the model, `activation`,
    /// `activation_1`...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.0.name = name.into();
        self
    }

    /// The activation applied.
    pub fn activation(&self) -> Activation {
        self.0.activation
    }

    /// Builds a layer from its [`config`](Layer::config), as Keras writes
    /// it: `{"name": ..., "activation": "tanh"}`, the activation by its
    /// Keras name (`"linear"`, `"relu"`, `"sigmoid"`, `"tanh"`,
    /// `"softmax"`), the name optional.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the config is not a JSON object,
    /// has no `activation` or one kerust does not have, or holds another
    /// field.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::activations::Activation;
    /// use kerust::layers::{ActivationLayer, Layer};
    /// use serde_json::json;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let layer = ActivationLayer::from_config(&json!({ "name": "a", "activation": "sigmoid" }))?;
    /// assert_eq!(layer.activation(), Activation::Sigmoid);
    /// let gelu = ActivationLayer::from_config(&json!({ "activation": "gelu" }));
    /// assert!(gelu.err().is_some_and(|e| e.to_string().contains("`activation` = \"gelu\"")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: &Value) -> Result<Self> {
        let fields = Fields::new("Activation", config, &["name", "activation"])?;
        let mut layer = ActivationLayer::new(fields.required("activation")?);
        layer.0.name = fields.name()?;
        Ok(layer)
    }
}

elementwise_layer!(ActivationLayer, "Activation", |body| {
    json!({ "name": body.name, "activation": body.activation })
});

/// Keras' `LeakyReLU`: `x` where `x >= 0`, `negative_slope * x` elsewhere,
/// element-wise. The slope defaults to Keras 3's 0.3 (its
/// `keras.activations.leaky_relu` function defaults to 0.2).
///
/// The derivative is 1 where `x >= 0`, at 0 included, and `negative_slope`
/// elsewhere, as Keras on JAX computes it. NaN stays NaN.
///
/// # Shapes
///
/// Output shaped like the input.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
/// use kerust::random::{stream, Purpose};
/// use ndarray::{array, ArrayD};
///
/// # fn main() -> kerust::Result<()> {
/// let mut layer = LeakyReLU::new().negative_slope(0.5);
/// layer.build(&[5], &mut stream(0, Purpose::Init, 0, 0))?;
/// let x = array![[-10.0_f32, -5.0, 0.0, 5.0, 10.0]].into_dyn();
/// let mut y = ArrayD::zeros(vec![0]);
/// layer.forward(x.view(), &mut y, false)?;
/// assert_eq!(y, array![[-5.0_f32, -2.5, 0.0, 5.0, 10.0]].into_dyn());
///
/// let mut model = Sequential::new().input_shape([3]).add(Dense::new(4)).add(LeakyReLU::new());
/// model.build()?;
/// assert_eq!(model.layers()[1].name(), "leaky_re_lu");
/// assert_eq!(model.layers()[1].config()["negative_slope"], 0.3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct LeakyReLU {
    name: String,
    negative_slope: f64,
    input_shape: Option<Vec<usize>>,
}

impl Default for LeakyReLU {
    fn default() -> Self {
        Self::new()
    }
}

impl LeakyReLU {
    /// A layer with Keras' default slope, 0.3.
    pub fn new() -> Self {
        LeakyReLU {
            name: String::new(),
            negative_slope: 0.3,
            input_shape: None,
        }
    }

    /// The slope below zero (default 0.3). Checked, finite and at least 0
    /// as Keras requires, when the layer is built.
    pub fn negative_slope(mut self, negative_slope: f64) -> Self {
        self.negative_slope = negative_slope;
        self
    }

    /// The layer's name (default: given by the model, `leaky_re_lu`,
    /// `leaky_re_lu_1`...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The slope below zero.
    pub fn slope(&self) -> f64 {
        self.negative_slope
    }

    /// Builds a layer from its [`config`](Layer::config), as Keras 3
    /// writes it: `{"name": ..., "negative_slope": 0.3}`, both optional.
    /// Keras 2's name of the slope, `alpha`, is read too.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the field when the config is not a
    /// JSON object, the slope is not a finite number at least 0, both
    /// `negative_slope` and `alpha` are given, or another field is.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::layers::{Layer, LeakyReLU};
    /// use serde_json::json;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let layer = LeakyReLU::from_config(&json!({ "name": "leaky", "alpha": 0.1 }))?;
    /// assert_eq!(layer.config(), json!({ "name": "leaky", "negative_slope": 0.1 }));
    /// let negative = LeakyReLU::from_config(&json!({ "negative_slope": -0.1 }));
    /// assert!(negative.err().is_some_and(|e| e.to_string().contains("`negative_slope`")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: &Value) -> Result<Self> {
        let fields = Fields::new("LeakyReLU", config, &["name", "negative_slope", "alpha"])?;
        let mut layer = LeakyReLU::new();
        layer.name = fields.name()?;
        match (
            fields.optional::<f64>("negative_slope")?,
            fields.optional::<f64>("alpha")?,
        ) {
            (Some(_), Some(alpha)) => {
                return Err(Error::invalid(
                    "alpha",
                    alpha,
                    "give the slope once: `alpha` is Keras 2's name of `negative_slope`",
                ))
            }
            (Some(slope), None) | (None, Some(slope)) => layer.negative_slope = slope,
            (None, None) => {}
        }
        layer.check_slope()?;
        Ok(layer)
    }

    /// Refuses a slope that is negative or not finite, as Keras does.
    fn check_slope(&self) -> Result<()> {
        if !(self.negative_slope.is_finite() && self.negative_slope >= 0.0) {
            return Err(Error::invalid(
                "negative_slope",
                self.negative_slope,
                "expected a finite number >= 0",
            ));
        }
        Ok(())
    }

    fn check(&self, input: &ArrayViewD<'_, f32>) -> Result<()> {
        check_input(&self.name, self.input_shape.as_deref(), input)
    }
}

impl Layer for LeakyReLU {
    fn class_name(&self) -> &str {
        "LeakyReLU"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut dyn RngCore) -> Result<Vec<usize>> {
        self.check_slope()?;
        self.input_shape = Some(input_shape.to_vec());
        Ok(input_shape.to_vec())
    }

    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        _training: bool,
    ) -> Result<()> {
        self.check(&input)?;
        resize(output, input.shape());
        // The slope rounded to f32, as Keras multiplies a float32 input.
        let slope = self.negative_slope as f32;
        Zip::from(output)
            .and(&input)
            .for_each(|y, &x| *y = if x >= 0.0 { x } else { slope * x });
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayViewD<'_, f32>,
        _output: ArrayViewD<'_, f32>,
        grad_output: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()> {
        self.check(&input)?;
        if grad_output.shape() != input.shape() {
            return Err(Error::shape(
                &self.name,
                format_shape(input.shape()),
                grad_output.shape(),
            ));
        }
        if let Some(grad_input) = grad_input {
            resize(grad_input, input.shape());
            let slope = self.negative_slope as f32;
            Zip::from(grad_input)
                .and(&input)
                .and(&grad_output)
                .for_each(|dx, &x, &dy| *dx = if x >= 0.0 { dy } else { slope * dy });
        }
        Ok(())
    }

    fn config(&self) -> Value {
        json!({ "name": self.name, "negative_slope": self.negative_slope })
    }
}
