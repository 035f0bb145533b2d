//! Finite-difference gradient checks, for authors of layers and losses.
//!
//! A layer's `backward` is easy to get subtly wrong. These functions compare
//! it with central differences of the layer's own `forward`:
//!
//! ```text
//! objective(x, w) = sum(forward(x, w) * u)        u: a fixed random array
//! numeric d/dx_i  = (objective(x + h e_i) - objective(x - h e_i)) / 2h
//! ```
//!
//! The objective is accumulated in `f64`; the layer itself computes in `f32`,
//! so with `h` near `1e-2` agreement to about `1e-3` relative is expected.
//! Kinks (ReLU at 0) give wrong numeric slopes when a perturbation crosses
//! them: keep inputs away from them.

use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};
use rand::Rng;

use crate::layers::Layer;
use crate::losses::Loss;
use crate::random::{stream, Purpose};
use crate::Result;

/// The worst disagreements a check found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradientCheck {
    /// Largest `|analytic - numeric| / max(1, |numeric|)` over the input.
    pub input_error: f64,
    /// The same over every weight.
    pub weight_error: f64,
    /// How many values were perturbed.
    pub checked: usize,
}

impl GradientCheck {
    /// The larger of the two errors.
    pub fn max_error(&self) -> f64 {
        self.input_error.max(self.weight_error)
    }
}

/// Checks `layer.backward` against central differences of `layer.forward`
/// at `input` (batch axis first), perturbing every input value and every
/// weight by `epsilon`. The layer must be built; its weights are left as
/// they were.
///
/// # Errors
///
/// Whatever the layer's `forward`, `backward` or `set_weights` return.
///
/// # Examples
///
/// ```
/// use kerust::gradcheck::check_layer;
/// use kerust::prelude::*;
/// use kerust::random::{stream, Purpose};
/// use ndarray::Array2;
///
/// # fn main() -> kerust::Result<()> {
/// let mut layer = Dense::new(3).activation(Activation::Tanh);
/// layer.build(&[4], &mut stream(0, Purpose::Init, 0, 0))?;
/// let x = Array2::from_shape_fn((2, 4), |(i, j)| (i as f32 - j as f32) / 4.0).into_dyn();
/// let check = check_layer(&mut layer, x.view(), 1e-2)?;
/// assert!(check.max_error() < 1e-3, "{check:?}");
/// # Ok(())
/// # }
/// ```
pub fn check_layer(
    layer: &mut dyn Layer,
    input: ArrayViewD<'_, f32>,
    epsilon: f32,
) -> Result<GradientCheck> {
    let mut output = ArrayD::zeros(IxDyn(&[0]));
    layer.forward(input.view(), &mut output, true)?;
    let mut rng = stream(0, Purpose::User(0x6772_6164), 0, 0);
    let upstream = output.mapv(|_| rng.random_range(-1.0_f32..1.0));

    let mut grad_input = ArrayD::zeros(IxDyn(&[0]));
    layer.backward(
        input.view(),
        output.view(),
        upstream.view(),
        Some(&mut grad_input),
    )?;
    let mut weight_grads: Vec<Vec<f32>> = Vec::new();
    layer.visit_parameters(&mut |_, g| weight_grads.push(g.to_vec()));

    let objective = |layer: &dyn Layer, x: ArrayViewD<'_, f32>| -> Result<f64> {
        let mut y = ArrayD::zeros(IxDyn(&[0]));
        layer.forward(x, &mut y, true)?;
        let mut sum = 0.0;
        Zip::from(&y)
            .and(&upstream)
            .for_each(|&a, &b| sum += f64::from(a) * f64::from(b));
        Ok(sum)
    };

    let mut x = input.to_owned();
    let mut input_error = 0.0_f64;
    for i in 0..x.len() {
        let numeric = central(epsilon, |delta| {
            let original = x.as_slice_mut().expect("owned")[i];
            x.as_slice_mut().expect("owned")[i] = original + delta;
            let value = objective(layer, x.view());
            x.as_slice_mut().expect("owned")[i] = original;
            value
        })?;
        let analytic = f64::from(grad_input.iter().nth(i).copied().unwrap_or(0.0));
        input_error = input_error.max(relative(analytic, numeric));
    }

    let original: Vec<ArrayD<f32>> = layer
        .weights()
        .into_iter()
        .map(|(_, w)| w.to_owned())
        .collect();
    let mut weights = original.clone();
    let mut weight_error = 0.0_f64;
    let mut checked = x.len();
    for (w, grads) in weight_grads.iter().enumerate() {
        for (j, &analytic) in grads.iter().enumerate() {
            let numeric = central(epsilon, |delta| {
                let base = original[w].as_slice().expect("owned")[j];
                weights[w].as_slice_mut().expect("owned")[j] = base + delta;
                layer.set_weights(&weights)?;
                let value = objective(layer, x.view());
                weights[w].as_slice_mut().expect("owned")[j] = base;
                value
            })?;
            weight_error = weight_error.max(relative(f64::from(analytic), numeric));
            checked += 1;
        }
    }
    layer.set_weights(&original)?;
    Ok(GradientCheck {
        input_error,
        weight_error,
        checked,
    })
}

/// Checks a loss' gradient with respect to `y_pred` against central
/// differences of its value. Returns the largest
/// `|analytic - numeric| / max(1, |numeric|)`.
///
/// # Errors
///
/// Whatever the loss returns for these arrays.
///
/// # Examples
///
/// ```
/// use kerust::gradcheck::check_loss;
/// use kerust::losses::MeanSquaredError;
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let y_true = array![[1.0_f32, 0.0], [0.5, 0.5]].into_dyn();
/// let y_pred = array![[0.8_f32, 0.1], [0.3, 0.9]].into_dyn();
/// assert!(check_loss(&MeanSquaredError, y_true.view(), y_pred.view(), 1e-2)? < 1e-3);
/// # Ok(())
/// # }
/// ```
pub fn check_loss(
    loss: &dyn Loss,
    y_true: ArrayViewD<'_, f32>,
    y_pred: ArrayViewD<'_, f32>,
    epsilon: f32,
) -> Result<f64> {
    let mut gradient = ArrayD::zeros(IxDyn(&[0]));
    loss.compute(y_true.view(), y_pred.view(), Some(&mut gradient))?;
    let mut p = y_pred.to_owned();
    let mut worst = 0.0_f64;
    for i in 0..p.len() {
        let numeric = central(epsilon, |delta| {
            let original = p.as_slice_mut().expect("owned")[i];
            p.as_slice_mut().expect("owned")[i] = original + delta;
            let value = loss.compute(y_true.view(), p.view(), None).map(f64::from);
            p.as_slice_mut().expect("owned")[i] = original;
            value
        })?;
        let analytic = f64::from(gradient.iter().nth(i).copied().unwrap_or(0.0));
        worst = worst.max(relative(analytic, numeric));
    }
    Ok(worst)
}

/// `(f(h) - f(-h)) / 2h`, with `h` as actually representable in f32.
fn central(epsilon: f32, mut f: impl FnMut(f32) -> Result<f64>) -> Result<f64> {
    let plus = f(epsilon)?;
    let minus = f(-epsilon)?;
    Ok((plus - minus) / (2.0 * f64::from(epsilon)))
}

fn relative(analytic: f64, numeric: f64) -> f64 {
    (analytic - numeric).abs() / numeric.abs().max(1.0)
}
