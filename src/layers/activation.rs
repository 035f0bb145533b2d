//! Activation layers: [`ReLU`] and [`Softmax`].

use ndarray::{ArrayD, ArrayViewD};
use rand::RngCore;

use super::flatten::name_from_config;
use super::{check_input, resize, Layer};
use crate::activations::Activation;
use crate::{Error, Result};

/// Shared body of the element-wise activation layers.
#[derive(Debug, Clone)]
struct ActivationLayer {
    name: String,
    activation: Activation,
    input_shape: Option<Vec<usize>>,
}

impl ActivationLayer {
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
}

macro_rules! activation_layer {
    ($(#[$doc:meta])* $type:ident, $activation:expr, $class:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $type(ActivationLayer);

        impl Default for $type {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $type {
            /// A new layer.
            pub fn new() -> Self {
                $type(ActivationLayer {
                    name: String::new(),
                    activation: $activation,
                    input_shape: None,
                })
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
            pub fn from_config(config: &serde_json::Value) -> Result<Self> {
                let mut layer = Self::new();
                layer.0.name = name_from_config($class, config)?;
                Ok(layer)
            }
        }

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

            fn build(&mut self, input_shape: &[usize], _rng: &mut dyn RngCore) -> Result<Vec<usize>> {
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

            fn config(&self) -> serde_json::Value {
                serde_json::json!({ "name": self.0.name })
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
                if !self.ends_in_softmax() {
                    return Err(Error::invalid("backward_from_logits", $class, "not a softmax"));
                }
                self.0.check(&input)?;
                if let Some(grad_input) = grad_input {
                    resize(grad_input, input.shape());
                    grad_input.assign(&grad_logits);
                }
                Ok(())
            }
        }
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
