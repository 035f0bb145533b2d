//! Activation functions, applied element-wise (or row-wise, for softmax).
//!
//! [`Activation`] is what [`Dense`](crate::layers::Dense) takes; the layers
//! [`ReLU`](crate::layers::ReLU) and [`Softmax`](crate::layers::Softmax) use
//! the same functions.

use ndarray::{ArrayViewD, ArrayViewMutD, Axis, Zip};
use serde::{Deserialize, Serialize};

/// An activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Activation {
    /// The identity, `f(x) = x` (Keras' `"linear"`, the default).
    #[default]
    Linear,
    /// `f(x) = max(x, 0)`; its derivative at 0 is taken as 0, as in Keras.
    Relu,
    /// `f(x) = 1 / (1 + exp(-x))`.
    Sigmoid,
    /// `f(x) = tanh(x)`.
    Tanh,
    /// `exp(x_i - max x) / sum_j exp(x_j - max x)` over the last axis.
    Softmax,
}

impl Activation {
    /// The Keras name: `"linear"`, `"relu"`, `"sigmoid"`, `"tanh"`,
    /// `"softmax"`.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
        }
    }

    /// Applies the function in place.
    pub fn apply(self, mut values: ArrayViewMutD<'_, f32>) {
        match self {
            Activation::Linear => {}
            // Written so that NaN passes through, as in Keras.
            Activation::Relu => values.mapv_inplace(|x| if x < 0.0 { 0.0 } else { x }),
            Activation::Sigmoid => values.mapv_inplace(|x| 1.0 / (1.0 + (-x).exp())),
            Activation::Tanh => values.mapv_inplace(f32::tanh),
            Activation::Softmax => {
                let last = Axis(values.ndim() - 1);
                for mut row in values.lanes_mut(last) {
                    match row.as_slice_mut() {
                        Some(slice) => softmax_in_place(slice),
                        None => {
                            let mut copy = row.to_vec();
                            softmax_in_place(&mut copy);
                            row.iter_mut().zip(copy).for_each(|(r, c)| *r = c);
                        }
                    }
                }
            }
        }
    }

    /// Turns `grad`, the gradient with respect to the activation's output
    /// `output`, into the gradient with respect to its input, in place.
    pub fn backward(self, output: ArrayViewD<'_, f32>, mut grad: ArrayViewMutD<'_, f32>) {
        match self {
            Activation::Linear => {}
            Activation::Relu => Zip::from(&mut grad).and(&output).for_each(|g, &y| {
                if y <= 0.0 {
                    *g = 0.0;
                }
            }),
            Activation::Sigmoid => Zip::from(&mut grad)
                .and(&output)
                .for_each(|g, &y| *g *= y * (1.0 - y)),
            // m + m y with m = g (1 - y), as JAX differentiates tanh in
            // reverse: 1 - y is exact where y is near 1, where 1 - y * y
            // would round.
            Activation::Tanh => Zip::from(&mut grad).and(&output).for_each(|g, &y| {
                let m = (1.0 - y) * *g;
                *g = m + m * y;
            }),
            Activation::Softmax => {
                // dz_i = y_i * (g_i - sum_j g_j y_j), the softmax Jacobian
                // applied to g without forming it.
                let last = Axis(output.ndim() - 1);
                for (mut g, y) in grad.lanes_mut(last).into_iter().zip(output.lanes(last)) {
                    let dot: f32 = g.iter().zip(y.iter()).map(|(a, b)| a * b).sum();
                    g.iter_mut()
                        .zip(y.iter())
                        .for_each(|(g, &y)| *g = y * (*g - dot));
                }
            }
        }
    }
}

/// Softmax of `values`, in place, stable for any finite values.
pub fn softmax_in_place(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    values.iter_mut().for_each(|v| *v /= sum);
}

/// Softmax of `logits` into `out`.
pub fn softmax_row(logits: &[f32], out: &mut [f32]) {
    out.copy_from_slice(logits);
    softmax_in_place(out);
}

/// Log-softmax of `logits` into `out`: `z - max - ln(sum exp(z - max))`.
pub fn log_softmax_row(logits: &[f32], out: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|z| (z - max).exp()).sum();
    let log_sum = sum.ln();
    for (o, &z) in out.iter_mut().zip(logits) {
        *o = z - max - log_sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn softmax_of_equal_huge_logits_is_uniform() {
        let mut x = array![[1000.0_f32, 1000.0]].into_dyn();
        Activation::Softmax.apply(x.view_mut());
        assert_eq!(x, array![[0.5_f32, 0.5]].into_dyn());
    }

    #[test]
    fn log_softmax_is_exact_for_extreme_logits() {
        let mut out = [0.0; 3];
        log_softmax_row(&[1000.0, 0.0, -1000.0], &mut out);
        assert_eq!(out, [0.0, -1000.0, -2000.0]);
    }
}
