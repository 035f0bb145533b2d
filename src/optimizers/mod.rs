//! Optimizers: how the weights move, given their gradients.
//!
//! The model calls [`Optimizer::begin_step`] once per training step, then
//! [`Optimizer::update`] once per trainable weight, numbering the weights
//! (`slot`) in the same order at every step. Per-weight state such as Adam's
//! moments lives in the optimizer, keyed by slot, and is saved with the model
//! in a checkpoint.

mod adam;
mod rmsprop;
mod sgd;

pub use adam::Adam;
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

/// The state array of weight `slot` in `slots`, made (zeros of `len`) when
/// it is missing or of another length: optimizers create their state
/// lazily, at a weight's first update.
pub(crate) fn slot_mut(slots: &mut Vec<Vec<f32>>, slot: usize, len: usize) -> &mut Vec<f32> {
    if slots.len() <= slot {
        slots.resize_with(slot + 1, Vec::new);
    }
    let state = &mut slots[slot];
    if state.len() != len {
        *state = vec![0.0; len];
    }
    state
}
