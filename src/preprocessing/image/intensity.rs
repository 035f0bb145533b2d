//! What the augmenter does to the values of an image after its geometry:
//! the channel shift and the brightness an image draws, as Keras'
//! `apply_transform` applies them, and the standardization every image gets
//! on its way into a batch, as Keras' `standardize`.

/// Keras' guard against a zero standard deviation: images are divided by
/// `std + STD_EPSILON`.
pub(crate) const STD_EPSILON: f32 = 1e-6;

/// Adds `intensity` to every value of one image, then clips each to the
/// range the image had before: its smallest and largest value over all
/// channels. So a shift brightens or darkens without leaving the picture's
/// range, as Keras' `apply_channel_shift`.
pub(crate) fn shift_channels(values: &mut [f32], intensity: f32) {
    let Some((low, high)) = value_range(values) else {
        return;
    };
    for v in values.iter_mut() {
        *v = (*v + intensity).clamp(low, high);
    }
}

/// Scales one image's brightness by `factor`, as Keras does through an
/// 8-bit picture: values are multiplied by the factor and clipped to
/// `[0, 255]`. An image with values outside `[0, 255]` is first mapped
/// from its own range onto `[0, 255]` and mapped back afterwards.
///
/// Keras' 8-bit picture also truncates every value to a whole number on the
/// way in and on the way out (so an image of values in `[0, 1]` comes back
/// black); kerust keeps the fractions.
pub(crate) fn brighten(values: &mut [f32], factor: f32) {
    let Some((low, high)) = value_range(values) else {
        return;
    };
    if low >= 0.0 && high <= 255.0 {
        for v in values.iter_mut() {
            *v = (*v * factor).clamp(0.0, 255.0);
        }
        return;
    }
    let span = high - low;
    for v in values.iter_mut() {
        let level = if span > 0.0 {
            (*v - low) / span * 255.0
        } else {
            0.0
        };
        *v = (level * factor).clamp(0.0, 255.0) / 255.0 * span + low;
    }
}

/// The smallest and largest value, or `None` for an empty image.
fn value_range(values: &[f32]) -> Option<(f32, f32)> {
    let first = *values.first()?;
    Some(
        values
            .iter()
            .fold((first, first), |(lo, hi), &v| (lo.min(v), hi.max(v))),
    )
}

/// The mean and the (population) standard deviation of `values`, summed in
/// `f64`.
pub(crate) fn mean_and_std(values: &[f32]) -> (f32, f32) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let variance = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean as f32, variance.sqrt() as f32)
}

/// The mean and standard deviation of each channel of images stored
/// channels-last in `values`, summed in `f64`.
pub(crate) fn channel_stats(values: &[f32], channels: usize) -> (Vec<f32>, Vec<f32>) {
    let mut sums = vec![0.0f64; channels];
    for pixel in values.chunks_exact(channels) {
        for (sum, &v) in sums.iter_mut().zip(pixel) {
            *sum += f64::from(v);
        }
    }
    let count = (values.len() / channels.max(1)).max(1) as f64;
    let means: Vec<f64> = sums.iter().map(|s| s / count).collect();
    let mut squares = vec![0.0f64; channels];
    for pixel in values.chunks_exact(channels) {
        for ((square, &v), mean) in squares.iter_mut().zip(pixel).zip(&means) {
            *square += (f64::from(v) - mean).powi(2);
        }
    }
    (
        means.iter().map(|&m| m as f32).collect(),
        squares.iter().map(|s| (s / count).sqrt() as f32).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_shift_stays_within_the_image_range() {
        let mut values = [0.0, 0.25, 0.5, 1.0];
        shift_channels(&mut values, 0.5);
        assert_eq!(values, [0.5, 0.75, 1.0, 1.0]);
        shift_channels(&mut values, -2.0);
        assert_eq!(values, [0.5, 0.5, 0.5, 0.5]);
    }

    #[test]
    fn brightness_clips_at_white_and_maps_other_ranges_back() {
        let mut pixels = [0.0, 100.0, 200.0];
        brighten(&mut pixels, 1.5);
        assert_eq!(pixels, [0.0, 150.0, 255.0]);
        // -1..=3 is mapped onto 0..=255, scaled by one half and mapped back.
        let mut wide = [-1.0, 1.0, 3.0];
        brighten(&mut wide, 0.5);
        assert_eq!(wide, [-1.0, 0.0, 1.0]);
    }

    #[test]
    fn stats_are_per_channel() {
        // Two pixels of two channels: (1, 10) and (3, 30).
        let (mean, std) = channel_stats(&[1.0, 10.0, 3.0, 30.0], 2);
        assert_eq!(mean, [2.0, 20.0]);
        assert_eq!(std, [1.0, 10.0]);
        assert_eq!(mean_and_std(&[1.0, 3.0]), (2.0, 1.0));
    }
}
