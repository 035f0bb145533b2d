//! Weight initializers, with Keras' names and formulas.

use ndarray::{Array2, ArrayD, IxDyn};
use ndarray_rand::rand_distr::{Normal, Uniform};
use ndarray_rand::RandomExt;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// How a weight is filled before training.
///
/// For a kernel of shape `(fan_in, fan_out)`:
///
/// ```text
/// glorot_uniform   U(-l, l), l = sqrt(6 / (fan_in + fan_out))
/// glorot_normal    N(0, s) truncated to 2s, s = sqrt(2 / (fan_in + fan_out))
/// he_uniform       U(-l, l), l = sqrt(6 / fan_in)
/// he_normal        N(0, s) truncated to 2s, s = sqrt(2 / fan_in)
/// zeros, ones      constant
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Initializer {
    /// Glorot (Xavier) uniform, Keras' default for kernels.
    #[default]
    GlorotUniform,
    /// Glorot normal, truncated at two standard deviations.
    GlorotNormal,
    /// He uniform.
    HeUniform,
    /// He normal, truncated at two standard deviations.
    HeNormal,
    /// All zeros, Keras' default for biases.
    Zeros,
    /// All ones.
    Ones,
}

impl Initializer {
    /// The Keras name, e.g. `"glorot_uniform"`.
    pub fn name(self) -> &'static str {
        match self {
            Initializer::GlorotUniform => "glorot_uniform",
            Initializer::GlorotNormal => "glorot_normal",
            Initializer::HeUniform => "he_uniform",
            Initializer::HeNormal => "he_normal",
            Initializer::Zeros => "zeros",
            Initializer::Ones => "ones",
        }
    }

    /// The bound `l` of a uniform initializer, or the standard deviation of
    /// a normal one, for the given fans; 0 for constants.
    pub fn scale(self, fan_in: usize, fan_out: usize) -> f32 {
        let (fan_in, fan_out) = (fan_in.max(1) as f32, fan_out.max(1) as f32);
        match self {
            Initializer::GlorotUniform => (6.0 / (fan_in + fan_out)).sqrt(),
            Initializer::GlorotNormal => (2.0 / (fan_in + fan_out)).sqrt(),
            Initializer::HeUniform => (6.0 / fan_in).sqrt(),
            Initializer::HeNormal => (2.0 / fan_in).sqrt(),
            Initializer::Zeros | Initializer::Ones => 0.0,
        }
    }

    /// A new array of `shape`. Up to two axes, the fans are the first axis
    /// and the product of the others (for a Dense kernel, `input_dim` and
    /// `units`). With more, as Keras computes them for a convolution kernel
    /// `(kernel_height, kernel_width, in_channels, filters)`, the last two
    /// axes are the fans, each times the product of the others (the
    /// receptive field): `fan_in = kernel_height * kernel_width *
    /// in_channels`, `fan_out = kernel_height * kernel_width * filters`.
    pub fn initialize(self, shape: &[usize], rng: &mut dyn RngCore) -> ArrayD<f32> {
        let (fan_in, fan_out) = fans(shape);
        let scale = self.scale(fan_in, fan_out);
        let dim = IxDyn(shape);
        match self {
            Initializer::Zeros => ArrayD::zeros(dim),
            Initializer::Ones => ArrayD::ones(dim),
            Initializer::GlorotUniform | Initializer::HeUniform => {
                let uniform = Uniform::new(-scale, scale).expect("a positive, finite bound");
                ArrayD::random_using(dim, uniform, rng)
            }
            Initializer::GlorotNormal | Initializer::HeNormal => {
                // Keras truncates at two standard deviations and rescales by
                // 0.8796 so that the truncated distribution keeps its spread.
                let std = scale / 0.879_625_7;
                let normal = Normal::new(0.0, std).expect("a positive, finite deviation");
                let draw = |rng: &mut dyn RngCore| loop {
                    let v: f32 = rand::Rng::sample(rng, normal);
                    if v.abs() <= 2.0 * std {
                        return v;
                    }
                };
                let values: Vec<f32> = (0..shape.iter().product::<usize>())
                    .map(|_| draw(rng))
                    .collect();
                ArrayD::from_shape_vec(dim, values).expect("the length matches the shape")
            }
        }
    }

    /// A new 2-D array of `(fan_in, fan_out)`.
    pub fn initialize_2d(
        self,
        fan_in: usize,
        fan_out: usize,
        rng: &mut dyn RngCore,
    ) -> Array2<f32> {
        self.initialize(&[fan_in, fan_out], rng)
            .into_dimensionality()
            .expect("two axes were asked for")
    }
}

/// `(fan_in, fan_out)` of a weight of `shape`, as [`Initializer::initialize`]
/// describes them.
fn fans(shape: &[usize]) -> (usize, usize) {
    if let [field @ .., inputs, outputs] = shape {
        if !field.is_empty() {
            let field = field.iter().product::<usize>();
            return (inputs * field, outputs * field);
        }
    }
    let fan_in = shape.first().copied().unwrap_or(1);
    (fan_in, shape.iter().skip(1).product::<usize>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{stream, Purpose};

    #[test]
    fn glorot_limits_match_keras() {
        // Keras: sqrt(6 / (fan_in + fan_out)); tests/fixtures/glorot.json.
        assert!((Initializer::GlorotUniform.scale(784, 128) - 0.081_110_71).abs() < 1e-7);
        assert!((Initializer::GlorotUniform.scale(128, 10) - 0.208_514_4).abs() < 1e-6);
    }

    #[test]
    fn glorot_uniform_draws_stay_inside_the_limit_and_fill_it() {
        let mut rng = stream(0, Purpose::Init, 0, 0);
        let w = Initializer::GlorotUniform.initialize_2d(784, 128, &mut rng);
        let limit = Initializer::GlorotUniform.scale(784, 128);
        let max = w.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
        assert!(max <= limit && max > 0.99 * limit);
        assert!(w.mean().unwrap().abs() < 0.002);
    }
}
