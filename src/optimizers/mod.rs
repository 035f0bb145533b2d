//! Optimizers: how the weights move, given their gradients.
//!
//! The model calls [`Optimizer::begin_step`] once per training step, then
//! [`Optimizer::update`] once per trainable weight, numbering the weights
//! (`slot`) in the same order at every step. Per-weight state such as Adam's
//! moments lives in the optimizer, keyed by slot, and is saved with the model
//! in a checkpoint.
//!
//! When an optimizer [needs every gradient of a step before its first
//! update](Optimizer::needs_all_gradients), as `global_clipnorm` does, the
//! model shows it each one with [`Optimizer::observe_gradient`] between
//! `begin_step` and the first `update`.
//!
//! Every built-in optimizer takes the options of Keras 3's base optimizer
//! under their Keras names: `weight_decay`, `clipnorm`, `clipvalue` and
//! `global_clipnorm`. They are applied as Keras applies them: the gradients
//! are clipped, then the weights decay, then the optimizer's own rule moves
//! them.
//!
//! # Examples
//!
//! ```
//! use kerust::prelude::*;
//!
//! # fn main() -> kerust::Result<()> {
//! let mut model = Sequential::new()
//!     .input_shape([4])
//!     .add(Dense::new(2).activation(Activation::Softmax));
//! let optimizer = AdamW::new().learning_rate(3e-4).global_clipnorm(1.0);
//! model.compile(optimizer, SparseCategoricalCrossentropy::new(), ["accuracy"])?;
//! # Ok(())
//! # }
//! ```
//!
//! # Limitations
//!
//! Keras' `exclude_from_weight_decay`, `use_ema`, `loss_scale_factor` and
//! `gradient_accumulation_steps` are not implemented: weight decay applies
//! to every trained weight, biases included, and a config holding one of the
//! others is refused by name when it is loaded.

mod adagrad;
mod adam;
mod adamw;
pub(crate) mod base;
mod nadam;
mod rmsprop;
mod sgd;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamw::AdamW;
pub use nadam::Nadam;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The state of an optimizer, as saved in a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    /// Steps taken so far.
    pub iterations: u64,
    /// Named per-slot arrays, e.g. `("m", 0, [...])` for Adam's first moment
    /// of weight 0.
    pub slots: Vec<(String, usize, Vec<f32>)>,
}

/// Updates weights from their gradients.
pub trait Optimizer: Send {
    /// The optimizer's name as Keras spells it, e.g. `"adam"`.
    fn name(&self) -> &str;

    /// The current learning rate.
    fn learning_rate(&self) -> f32;

    /// Sets the learning rate used from the next step on.
    fn set_learning_rate(&mut self, learning_rate: f32);

    /// Starts a training step (Adam counts its iterations here).
    fn begin_step(&mut self);

    /// Whether the optimizer must see every gradient of a step before it
    /// updates the first weight (default false). When it is true, the model
    /// calls [`observe_gradient`](Optimizer::observe_gradient) for each
    /// trained weight after `begin_step` and before the first `update`.
    ///
    /// The built-in optimizers return true when `global_clipnorm` is set.
    fn needs_all_gradients(&self) -> bool {
        false
    }

    /// Shows the optimizer the gradient of the weight numbered `slot`
    /// before any weight of the step is updated (default: nothing). Only
    /// called when [`needs_all_gradients`](Optimizer::needs_all_gradients)
    /// is true; a program that drives an optimizer by hand calls it for
    /// every weight, in slot order, between `begin_step` and the updates.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::optimizers::{Optimizer, Sgd};
    ///
    /// // Two weights whose gradients have a global norm of 5: clipped to 1,
    /// // every gradient is divided by 5.
    /// let mut sgd = Sgd::new().learning_rate(1.0).global_clipnorm(1.0);
    /// let (mut a, mut b) = ([0.0_f32], [0.0_f32]);
    /// sgd.begin_step();
    /// assert!(sgd.needs_all_gradients());
    /// sgd.observe_gradient(0, &[3.0]);
    /// sgd.observe_gradient(1, &[4.0]);
    /// sgd.update(0, &mut a, &[3.0]);
    /// sgd.update(1, &mut b, &[4.0]);
    /// assert!((a[0] + 0.6).abs() < 1e-6 && (b[0] + 0.8).abs() < 1e-6);
    /// ```
    fn observe_gradient(&mut self, slot: usize, gradient: &[f32]) {
        let _ = (slot, gradient);
    }

    /// Updates the weight numbered `slot` in place from its gradient.
    fn update(&mut self, slot: usize, value: &mut [f32], gradient: &[f32]);

    /// Steps taken so far.
    fn iterations(&self) -> u64;

    /// The state to save in a checkpoint.
    fn state(&self) -> OptimizerState;

    /// Restores a state saved by [`state`](Optimizer::state).
    ///
    /// # Errors
    ///
    /// [`Error::Format`] or
    /// [`Error::InvalidArgument`] when the
    /// state does not belong to this kind of optimizer.
    fn load_state(&mut self, state: &OptimizerState) -> Result<()>;

    /// Checks the hyperparameters; `compile` calls this before training.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the
    /// first hyperparameter that cannot be used.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// The configuration (hyperparameters), as Keras' `get_config`.
    fn config(&self) -> serde_json::Value;
}

/// A boxed optimizer is an optimizer: `compile` takes one made at run time,
/// such as [`optimizer_from_config`](crate::saving::optimizer_from_config)
/// returns.
impl Optimizer for Box<dyn Optimizer> {
    fn name(&self) -> &str {
        self.as_ref().name()
    }

    fn learning_rate(&self) -> f32 {
        self.as_ref().learning_rate()
    }

    fn set_learning_rate(&mut self, learning_rate: f32) {
        self.as_mut().set_learning_rate(learning_rate);
    }

    fn begin_step(&mut self) {
        self.as_mut().begin_step();
    }

    fn needs_all_gradients(&self) -> bool {
        self.as_ref().needs_all_gradients()
    }

    fn observe_gradient(&mut self, slot: usize, gradient: &[f32]) {
        self.as_mut().observe_gradient(slot, gradient);
    }

    fn update(&mut self, slot: usize, value: &mut [f32], gradient: &[f32]) {
        self.as_mut().update(slot, value, gradient);
    }

    fn iterations(&self) -> u64 {
        self.as_ref().iterations()
    }

    fn state(&self) -> OptimizerState {
        self.as_ref().state()
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.as_mut().load_state(state)
    }

    fn validate(&self) -> Result<()> {
        self.as_ref().validate()
    }

    fn config(&self) -> serde_json::Value {
        self.as_ref().config()
    }
}

/// An [`Error::InvalidArgument`] for `name` unless `value` is in `[0, 1)`,
/// as decay rates and momenta must be.
pub(crate) fn fraction<T: Copy + Into<f64> + std::fmt::Display>(
    name: &str,
    value: T,
) -> Result<()> {
    if (0.0..1.0).contains(&value.into()) {
        Ok(())
    } else {
        Err(Error::invalid(name, value, "expected a value in [0, 1)"))
    }
}

/// An [`Error::InvalidArgument`] for `name` unless `value` is positive and
/// finite, as learning rates and epsilons must be.
pub(crate) fn positive(name: &str, value: f32) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            value,
            "expected a positive, finite number",
        ))
    }
}

/// Checks a learning rate: finite and at least 0. A rate of 0 is allowed, as
/// in Keras: a warm-up schedule may start from it, and a model saved then
/// must load again.
pub(crate) fn learning_rate(value: f32) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            "learning_rate",
            value,
            "expected a finite number >= 0",
        ))
    }
}

/// The state array of weight `slot` in `slots`, made (zeros of `len`) when
/// it is missing or of another length: optimizers create their state
/// lazily, at a weight's first update.
pub(crate) fn slot_mut(slots: &mut Vec<Vec<f32>>, slot: usize, len: usize) -> &mut Vec<f32> {
    slot_mut_from(slots, slot, len, 0.0)
}

/// As [`slot_mut`], for state that starts at `initial` rather than zero
/// (Adagrad's accumulator).
pub(crate) fn slot_mut_from(
    slots: &mut Vec<Vec<f32>>,
    slot: usize,
    len: usize,
    initial: f32,
) -> &mut Vec<f32> {
    if slots.len() <= slot {
        slots.resize_with(slot + 1, Vec::new);
    }
    let state = &mut slots[slot];
    if state.len() != len {
        *state = vec![initial; len];
    }
    state
}
