//! What the augmenter does to an image's values besides its geometry:
//! channel shifts, brightness and standardization, against Keras' own
//! results (`tests/fixtures/augment_values.json`, written by
//! `make_augment_values.py` beside it).

use kerust::model::BatchSource;
use kerust::preprocessing::image::{ImageDataGenerator, TransformParams};
use kerust::random::{stream, Purpose};
use kerust::Error;
use ndarray::{Array3, Array4, Axis};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    transforms: Vec<TransformCase>,
    fit: Images,
    probe: Image,
    standardize: Vec<StandardizeCase>,
}

#[derive(Deserialize)]
struct TransformCase {
    name: String,
    shape: Vec<usize>,
    image: Vec<f32>,
    params: TransformParams,
    output: Vec<f32>,
}

#[derive(Deserialize)]
struct Images {
    shape: Vec<usize>,
    images: Vec<f32>,
}

#[derive(Deserialize)]
struct Image {
    shape: Vec<usize>,
    image: Vec<f32>,
}

#[derive(Deserialize)]
struct StandardizeCase {
    name: String,
    options: serde_json::Map<String, serde_json::Value>,
    mean: Option<Vec<f32>>,
    std: Option<Vec<f32>>,
    output: Vec<f32>,
}

fn fixture() -> Fixture {
    let text = std::fs::read_to_string("tests/fixtures/augment_values.json")
        .expect("the fixture is committed");
    serde_json::from_str(&text).expect("the fixture parses")
}

fn image3(shape: &[usize], values: &[f32]) -> Array3<f32> {
    Array3::from_shape_vec((shape[0], shape[1], shape[2]), values.to_vec())
        .expect("the fixture's shape fits its values")
}

/// A generator with the fixture's Keras options, read by name.
fn generator_from(options: &serde_json::Map<String, serde_json::Value>) -> ImageDataGenerator {
    let mut generator = ImageDataGenerator::new();
    for (name, value) in options {
        generator = match value {
            serde_json::Value::Bool(flag) => generator.set(name, *flag),
            other => generator.set(name, other.as_f64().expect("a number")),
        }
        .expect("Keras' option is known");
    }
    generator
}

#[test]
fn channel_shifts_match_keras_to_the_bit_and_brightness_within_truncation() {
    let fixture = fixture();
    let generator = ImageDataGenerator::new();
    assert_eq!(fixture.transforms.len(), 7);
    for case in &fixture.transforms {
        let image = image3(&case.shape, &case.image);
        let out = generator.apply_transform(image.view(), &case.params);
        let Some(factor) = case.params.brightness else {
            // Geometry and channel shift: the same float32 values as Keras.
            let ours: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            let theirs: Vec<u32> = case.output.iter().map(|v| v.to_bits()).collect();
            assert_eq!(ours, theirs, "{}", case.name);
            continue;
        };
        // Keras truncates to whole levels of an 8-bit picture on the way in
        // and out; kerust keeps the fractions. Whole-number pictures lose
        // less than one level, others less than two of their own range.
        let (low, high) = case
            .image
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let level = if low >= 0.0 && high <= 255.0 {
            1.0
        } else {
            2.0 * (high - low) / 255.0
        };
        for (i, (ours, theirs)) in out.iter().zip(&case.output).enumerate() {
            let above = ours - theirs;
            assert!(
                (-1e-3..level).contains(&above),
                "{} (factor {factor}) value {i}: kerust {ours}, Keras {theirs}",
                case.name
            );
        }
    }
}

#[test]
fn fit_and_standardize_match_keras() -> kerust::Result<()> {
    let fixture = fixture();
    let s = &fixture.fit.shape;
    let stack = Array4::from_shape_vec((s[0], s[1], s[2], s[3]), fixture.fit.images.clone())
        .expect("the fixture's shape fits its values");
    assert_eq!(fixture.standardize.len(), 4);
    for case in &fixture.standardize {
        let mut generator = generator_from(&case.options);
        generator.fit(&stack)?;
        let close = |ours: &[f32], theirs: &[f32], what: &str| {
            assert_eq!(ours.len(), theirs.len(), "{} {what}", case.name);
            for (a, b) in ours.iter().zip(theirs) {
                assert!(
                    (a - b).abs() <= 2e-6 * b.abs().max(1.0),
                    "{} {what}: kerust {a}, Keras {b}",
                    case.name
                );
            }
        };
        match &case.mean {
            Some(mean) => close(generator.feature_mean().expect("a mean"), mean, "mean"),
            None => assert!(generator.feature_mean().is_none(), "{}", case.name),
        }
        match &case.std {
            Some(std) => close(generator.feature_std().expect("a std"), std, "std"),
            None => assert!(generator.feature_std().is_none(), "{}", case.name),
        }
        let mut probe = image3(&fixture.probe.shape, &fixture.probe.image);
        generator.standardize(probe.view_mut())?;
        close(
            probe.as_slice().expect("standard layout"),
            &case.output,
            "output",
        );
    }
    Ok(())
}

#[test]
fn value_draws_come_after_the_geometry_and_stay_in_their_ranges() {
    let geometric = ImageDataGenerator::new()
        .rotation_range(15.0)
        .zoom_range(0.1)
        .horizontal_flip(true);
    let with_values = geometric
        .clone()
        .channel_shift_range(30.0)
        .brightness_range(0.5, 1.5);
    let (mut shifts, mut factors) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let a = geometric.random_transform((28, 28), &mut stream(7, Purpose::Augment, 0, i));
        let b = with_values.random_transform((28, 28), &mut stream(7, Purpose::Augment, 0, i));
        assert_eq!(a.channel_shift_intensity, None);
        assert_eq!(a.brightness, None);
        let geometry = TransformParams {
            channel_shift_intensity: None,
            brightness: None,
            ..b
        };
        assert_eq!(a, geometry, "draw {i}");
        shifts.push(b.channel_shift_intensity.expect("a shift"));
        factors.push(b.brightness.expect("a factor"));
    }
    assert!(shifts.iter().all(|s| (-30.0..30.0).contains(s)));
    assert!(factors.iter().all(|f| (0.5..1.5).contains(f)));
    // Both ends of each range are reached, so the draws are not constant.
    assert!(shifts.iter().any(|&s| s < -25.0) && shifts.iter().any(|&s| s > 25.0));
    assert!(factors.iter().any(|&f| f < 0.6) && factors.iter().any(|&f| f > 1.4));
}

fn digits(n: usize) -> (Array4<u8>, ndarray::Array1<f32>) {
    let x = Array4::from_shape_fn((n, 6, 5, 2), |(i, r, c, ch)| {
        ((i * 37 + r * 11 + c * 5 + ch * 90) % 256) as u8
    });
    let y = ndarray::Array1::from_shape_fn(n, |i| (i % 3) as f32);
    (x, y)
}

#[test]
fn a_flow_standardizes_each_augmented_image_as_standardize_does() -> kerust::Result<()> {
    let (x, y) = digits(12);
    let mut generator = ImageDataGenerator::new()
        .rotation_range(10.0)
        .channel_shift_range(20.0)
        .brightness_range(0.8, 1.2)
        .rescale(1.0 / 255.0)
        .samplewise_center(true)
        .featurewise_std_normalization(true);
    generator.fit(&x)?;
    let mut flow = generator.flow(&x, &y, 5)?.shuffle(false).seed(3);
    flow.start_epoch(2)?;
    let batch = flow.next_batch()?.expect("a first batch");
    for i in 0..5 {
        let params = generator.random_transform((6, 5), &mut stream(3, Purpose::Augment, 2, i));
        let mut expected = generator.apply_transform(x.index_axis(Axis(0), i as usize), &params);
        generator.standardize(expected.view_mut())?;
        let got = batch.x.index_axis(Axis(0), i as usize);
        assert_eq!(got, expected.into_dyn(), "image {i}");
    }
    Ok(())
}

#[test]
fn bytes_and_floats_fit_the_same_statistics() -> kerust::Result<()> {
    let (x, _) = digits(7);
    let mut from_bytes = ImageDataGenerator::new().featurewise_std_normalization(true);
    let mut from_floats = from_bytes.clone();
    from_bytes.fit(&x)?;
    from_floats.fit(&x.mapv(f32::from))?;
    assert_eq!(from_bytes, from_floats);
    let mean = from_bytes
        .feature_mean()
        .expect("std normalization implies centring");
    assert_eq!(mean.len(), 2);
    let direct: f64 = x
        .index_axis(Axis(3), 1)
        .iter()
        .map(|&v| f64::from(v))
        .sum::<f64>()
        / (7.0 * 6.0 * 5.0);
    assert!(
        (f64::from(mean[1]) - direct).abs() < 1e-4,
        "{} vs {direct}",
        mean[1]
    );
    Ok(())
}

#[test]
fn feature_wise_options_need_a_fit_on_images_of_the_same_channels() {
    let (x, y) = digits(4);
    let generator = ImageDataGenerator::new().featurewise_center(true);
    let err = generator.flow(&x, &y, 2).err();
    assert!(
        matches!(&err, Some(Error::InvalidArgument { name, reason, .. })
            if name == "featurewise_center" && reason.contains("fit")),
        "{err:?}"
    );
    let err = generator.preview_grid(&x, 1, 2, 0).err();
    assert!(
        matches!(err, Some(Error::InvalidArgument { .. })),
        "{err:?}"
    );

    let mut fitted = ImageDataGenerator::new().featurewise_std_normalization(true);
    fitted.fit(&x).expect("fits");
    let grey = Array4::<f32>::zeros((2, 6, 5, 1));
    let err = fitted
        .flow(&grey, &ndarray::Array1::<f32>::zeros(2), 2)
        .err();
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("2 channels") && message.contains("1"),
        "{message}"
    );
}

#[test]
fn fit_refuses_what_is_not_a_stack_of_finite_images() {
    let mut generator = ImageDataGenerator::new().featurewise_center(true);
    let flat = Array3::<f32>::zeros((4, 28, 28));
    assert!(matches!(
        generator.fit(&flat),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut bad = Array4::<f32>::zeros((3, 2, 2, 1));
    bad[[2, 1, 0, 0]] = f32::NAN;
    match generator.fit(&bad) {
        Err(Error::NonFiniteInput { index, .. }) => assert_eq!(index, 2),
        other => panic!("expected a non-finite input error, got {other:?}"),
    }
    assert!(generator.feature_mean().is_none());
}

#[test]
fn bad_value_ranges_are_refused_by_name() {
    let cases = [
        (
            ImageDataGenerator::new().channel_shift_range(-1.0),
            "channel_shift_range",
        ),
        (
            ImageDataGenerator::new().channel_shift_range(f64::NAN),
            "channel_shift_range",
        ),
        (
            ImageDataGenerator::new().brightness_range(1.2, 0.8),
            "brightness_range",
        ),
        (
            ImageDataGenerator::new().brightness_range(-0.5, 1.0),
            "brightness_range",
        ),
    ];
    for (generator, expected) in cases {
        match generator.validate() {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
            other => panic!("expected {expected} to be refused, got {other:?}"),
        }
    }
}

#[test]
fn a_preprocessing_function_runs_on_every_image_before_rescale() -> kerust::Result<()> {
    let (x, y) = digits(6);
    // Inverts bytes, then rescale maps them to [0, 1].
    let generator = ImageDataGenerator::new()
        .preprocessing_function(|mut image| image.mapv_inplace(|v| 255.0 - v))
        .rescale(1.0 / 255.0);
    let mut flow = generator.flow(&x, &y, 6)?.shuffle(false);
    flow.start_epoch(0)?;
    let batch = flow.next_batch()?.expect("one batch");
    let expected = x.mapv(|v| (255.0 - f32::from(v)) * (1.0 / 255.0));
    assert_eq!(batch.x, expected.into_dyn());
    assert_eq!(generator.clone(), generator);
    assert_ne!(
        generator,
        ImageDataGenerator::new()
            .preprocessing_function(|_| {})
            .rescale(1.0 / 255.0)
    );
    let by_name = ImageDataGenerator::new()
        .set("preprocessing_function", 1.0)
        .err();
    assert!(
        matches!(&by_name, Some(Error::InvalidArgument { reason, .. }) if reason.contains("function")),
        "{by_name:?}"
    );
    Ok(())
}
