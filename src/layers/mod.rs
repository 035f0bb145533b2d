//! Layers: the [`Layer`] trait and the layers kerust ships.
//!
//! A layer maps a batch of inputs to a batch of outputs (`forward`) and
//! a gradient of the loss with respect to its outputs back to its inputs
//! (`backward`), keeping the gradient of its own weights for the optimizer.
//! Shapes given to and returned by [`Layer::build`] leave out the batch axis,
//! as Keras does; arrays given to `forward` and `backward` have it first.
//!
//! Layers from another crate implement the same trait; see the tutorial
//! chapter on writing your own layer.

mod activation;
mod average_pooling;
mod batch_normalization;
mod config;
mod conv2d;
mod dense;
mod dropout;
mod flatten;
mod global_pooling;
mod layer_normalization;
mod pooling;
mod products;
mod reshape;
mod window;

pub use activation::{ActivationLayer, LeakyReLU, ReLU, Softmax};
pub use average_pooling::AveragePooling2D;
pub use batch_normalization::BatchNormalization;
pub use conv2d::Conv2D;
pub use dense::Dense;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use global_pooling::{GlobalAveragePooling2D, GlobalMaxPooling2D};
pub use layer_normalization::LayerNormalization;
pub use pooling::MaxPooling2D;
pub use reshape::Reshape;
pub use window::Padding;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rand::RngCore;

use crate::Result;

/// A layer of a [`Sequential`](crate::model::Sequential) model.
///
/// The model owns the arrays: it hands `forward` an output buffer to fill
/// (kept from batch to batch, so a layer allocates nothing in the steady
/// state) and hands `backward` the input and output of the last forward pass,
/// so a layer need not keep copies of them.
pub trait Layer: Send + Sync {
    /// The layer's type as Keras names it, e.g. `"Dense"`.
    fn class_name(&self) -> &str;

    /// The layer's name, unique within a model, e.g. `"dense_1"`. Empty
    /// until the model names it.
    fn name(&self) -> &str;

    /// Sets the layer's name; the model calls this when the layer is added
    /// with an empty name.
    fn set_name(&mut self, name: String);

    /// Creates the weights for inputs of `input_shape` (batch axis left out)
    /// and returns the output shape. Random initial values come from `rng`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) when the layer
    /// cannot take inputs of that shape.
    fn build(&mut self, input_shape: &[usize], rng: &mut dyn RngCore) -> Result<Vec<usize>>;

    /// Computes the output for a batch. `output` may hold anything on entry,
    /// of any shape; the layer gives it the output's shape (reusing its
    /// memory when the shape is unchanged) and fills it.
    ///
    /// # Errors
    ///
    /// [`Error::NotBuilt`](crate::Error::NotBuilt) before `build`, and
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for an input of
    /// another shape than the one built for.
    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        training: bool,
    ) -> Result<()>;

    /// Back-propagates `grad_output`, the gradient of the loss with respect
    /// to `output`. Stores the gradient of each weight (replacing the last
    /// one) and, when `grad_input` is given, writes the gradient with respect
    /// to `input` into it, shaped like `input`. The model passes `None` for
    /// the first layer, whose input gradient nobody needs.
    ///
    /// # Errors
    ///
    /// As [`forward`](Layer::forward).
    fn backward(
        &mut self,
        input: ArrayViewD<'_, f32>,
        output: ArrayViewD<'_, f32>,
        grad_output: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()>;

    /// The weights, named as in Keras (`"kernel"`, `"bias"`), in a fixed
    /// order. Empty for layers without weights and before `build`.
    fn weights(&self) -> Vec<(String, ArrayViewD<'_, f32>)> {
        Vec::new()
    }

    /// Replaces the weights, given in the order of [`weights`](Layer::weights).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) when a count or
    /// shape differs from the layer's.
    fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        if weights.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::ShapeMismatch {
                layer: self.name().to_string(),
                expected: "no weights".to_string(),
                got: format!("{} arrays", weights.len()),
            })
        }
    }

    /// Calls `visit(values, gradients)` once per trainable weight, in the
    /// order of [`weights`](Layer::weights), with the gradients stored by the
    /// last `backward`. The optimizer updates `values` in place.
    fn visit_parameters(&mut self, visit: &mut dyn FnMut(&mut [f32], &[f32])) {
        let _ = visit;
    }

    /// The weights the optimizer trains, as Keras' `trainable_weights`:
    /// those [`visit_parameters`](Layer::visit_parameters) visits, in its
    /// order. The default is every weight of [`weights`](Layer::weights). A
    /// layer with weights that training sets without the optimizer, such as
    /// [`BatchNormalization`]'s moving statistics, leaves them out here.
    fn trainable_weights(&self) -> Vec<(String, ArrayViewD<'_, f32>)> {
        self.weights()
    }

    /// Number of weights, as `summary()` counts them.
    fn param_count(&self) -> usize {
        self.weights().iter().map(|(_, w)| w.len()).sum()
    }

    /// Number of weights the optimizer trains, the length of
    /// [`trainable_weights`](Layer::trainable_weights); `summary()` counts
    /// the rest of [`param_count`](Layer::param_count) as non-trainable.
    fn trainable_param_count(&self) -> usize {
        self.trainable_weights().iter().map(|(_, w)| w.len()).sum()
    }

    /// Updates what a training step changes in the layer besides the
    /// weights the optimizer trains, such as [`BatchNormalization`]'s moving
    /// statistics. A training step (`fit`, `train_on_batch`) calls it once
    /// per batch, right after [`forward`](Layer::forward) in training mode,
    /// with that call's input and output, whether or not the step then
    /// back-propagates through the layer. `forward` takes `&self` and
    /// cannot keep such state itself. The default does nothing.
    ///
    /// # Errors
    ///
    /// As [`forward`](Layer::forward).
    fn update_state(
        &mut self,
        input: ArrayViewD<'_, f32>,
        output: ArrayViewD<'_, f32>,
    ) -> Result<()> {
        let _ = (input, output);
        Ok(())
    }

    /// Told by the model whether the layer's weights are trained, when
    /// [`Sequential::set_trainable`](crate::model::Sequential::set_trainable)
    /// changes it and when a model file is loaded. Freeze layers through the
    /// model, which also keeps the optimizer off their weights, rather than
    /// by calling this. A layer that computes differently when frozen keeps
    /// the flag: [`BatchNormalization`] then normalises by its moving
    /// statistics, also in training, and stops updating them, as in Keras.
    /// The default does nothing.
    fn on_trainable_changed(&mut self, trainable: bool) {
        let _ = trainable;
    }

    /// The layer's configuration, enough to make it again with
    /// [`LayerRegistry`](crate::saving::LayerRegistry) (weights aside).
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name() })
    }

    /// Told before each training step where it falls: `fit` gives the epoch
    /// and the step within it (both from zero), `train_on_batch` the
    /// optimizer's step count in an epoch of its own, `usize::MAX`. A layer
    /// whose training is random, such as [`Dropout`], draws from a stream of
    /// these, so a run is the same whatever else the program did. The
    /// default does nothing.
    fn start_step(&mut self, epoch: usize, step: usize) {
        let _ = (epoch, step);
    }

    /// For a layer whose output holds its input's values in the same order
    /// under another shape, as [`Flatten`]'s does: that shape, batch axis
    /// included, for `input`. A training step views its batch in that shape
    /// instead of calling [`forward`](Layer::forward) when only such layers
    /// stand between the batch and the first layer with weights, saving a
    /// copy of the batch. `None` (the default) for any other layer.
    ///
    /// # Errors
    ///
    /// As [`forward`](Layer::forward).
    fn reshaped(&self, input: &ArrayViewD<'_, f32>) -> Result<Option<IxDyn>> {
        let _ = input;
        Ok(None)
    }

    /// Whether the layer ends in a softmax over the last axis (Dense with a
    /// softmax activation, or [`Softmax`]). The model then fuses it with a
    /// cross-entropy loss, which is exact and stable for any logits.
    fn ends_in_softmax(&self) -> bool {
        false
    }

    /// Back-propagates a gradient given with respect to the logits that
    /// entered the final softmax, skipping the softmax's own Jacobian. Only
    /// called when [`ends_in_softmax`](Layer::ends_in_softmax) is true.
    ///
    /// # Errors
    ///
    /// As [`backward`](Layer::backward); the default refuses the call.
    fn backward_from_logits(
        &mut self,
        input: ArrayViewD<'_, f32>,
        grad_logits: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> Result<()> {
        let _ = (input, grad_logits, grad_input);
        Err(crate::Error::invalid(
            "backward_from_logits",
            self.name(),
            "this layer does not end in a softmax",
        ))
    }
}

/// Checks that a layer built for samples of `built` (batch axis left out)
/// receives a batch of them. A layer of your own can call it first thing in
/// `forward` and `backward`.
///
/// # Errors
///
/// [`Error::NotBuilt`](crate::Error::NotBuilt) when `built` is `None`, and
/// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) naming `layer` and
/// the expected shape otherwise.
///
/// # Examples
///
/// ```
/// use kerust::layers::check_input;
/// use ndarray::Array3;
///
/// let batch = Array3::<f32>::zeros((4, 28, 28)).into_dyn();
/// assert!(check_input("mine", Some(&[28, 28]), &batch.view()).is_ok());
/// let err = check_input("mine", Some(&[784]), &batch.view()).unwrap_err();
/// assert_eq!(err.to_string(), "`mine` expected shape (None, 784), got (4, 28, 28)");
/// ```
pub fn check_input(
    layer: &str,
    built: Option<&[usize]>,
    input: &ArrayViewD<'_, f32>,
) -> Result<()> {
    let Some(expected) = built else {
        return Err(crate::Error::NotBuilt {
            layer: layer.to_string(),
        });
    };
    if input.ndim() == 0 || &input.shape()[1..] != expected {
        return Err(crate::Error::shape(
            layer,
            crate::error::format_batch_shape(expected),
            input.shape(),
        ));
    }
    Ok(())
}

/// Gives `array` the shape `shape`. When the shape is already right, the
/// values are left as they are; otherwise the array holds zeros, in the
/// memory it had when that is large enough. Layers call it on the `output`
/// and `grad_input` buffers.
///
/// The model hands its layers two gradient buffers in turn, each holding
/// arrays of several shapes over a step; keeping the memory means they stop
/// allocating once each has held the largest.
pub fn resize(array: &mut ArrayD<f32>, shape: &[usize]) {
    if array.shape() == shape {
        return;
    }
    let empty = ArrayD::from_shape_vec(IxDyn(&[0]), Vec::new()).expect("no values, no axis");
    let (mut values, offset) = std::mem::replace(array, empty).into_raw_vec_and_offset();
    if offset.unwrap_or(0) != 0 {
        values = Vec::new();
    }
    values.clear();
    values.resize(shape.iter().product(), 0.0);
    *array = ArrayD::from_shape_vec(IxDyn(shape), values).expect("the length fits the shape");
}
