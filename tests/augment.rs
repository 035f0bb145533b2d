//! The image augmenter against Keras' reference pictures, and the batches of
//! its flow: shapes, order, labels, seeds and threads.

use std::collections::HashSet;

use kerust::model::{Batch, BatchSource};
use kerust::preprocessing::image::{FillMode, Flow, ImageDataGenerator, TransformParams};
use kerust::random::{stream, Purpose};
use kerust::Error;
use ndarray::{Array1, Array2, Array3, Array4, ArrayView3};
use proptest::prelude::*;
use serde::Deserialize;

/// `tests/fixtures/augment_geometry.json`, written by Keras 3.15.1 with
/// scipy 1.17.1: for MNIST training digits 0, 1 and 2 (as float32 in
/// [0, 1]),
///
/// ```python
/// out = ImageDataGenerator().apply_transform(x[index][..., None], params)[..., 0]
/// ```
///
/// with params such as `{"theta": 15.0}` or `{"zx": 1.1, "zy": 1.1}`.
#[derive(Deserialize)]
struct Geometry {
    inputs: Vec<GeometryInput>,
    cases: Vec<GeometryCase>,
}

#[derive(Deserialize)]
struct GeometryInput {
    index: usize,
    image: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct GeometryCase {
    name: String,
    index: usize,
    params: TransformParams,
    output: Vec<Vec<f32>>,
}

fn plane(rows: &[Vec<f32>]) -> Array3<f32> {
    let (h, w) = (rows.len(), rows[0].len());
    Array3::from_shape_fn((h, w, 1), |(r, c, _)| rows[r][c])
}

fn load_geometry() -> Geometry {
    let text = std::fs::read_to_string("tests/fixtures/augment_geometry.json")
        .expect("the geometry fixture is committed");
    serde_json::from_str(&text).expect("the geometry fixture parses")
}

#[test]
fn explicit_transforms_match_keras_within_1e_5_on_real_digits() {
    let geometry = load_geometry();
    let generator = ImageDataGenerator::new();
    assert_eq!(geometry.cases.len(), 21);
    for case in &geometry.cases {
        let input = geometry
            .inputs
            .iter()
            .find(|input| input.index == case.index)
            .expect("every case names one of the inputs");
        let output = generator.apply_transform(plane(&input.image).view(), &case.params);
        let expected = plane(&case.output);
        let worst = output
            .iter()
            .zip(expected.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-5,
            "{} on digit {}: max abs difference {worst}",
            case.name,
            case.index
        );
    }
}

/// A single bright pixel at (row 5, col 14) of a 28x28 image, the probe
/// behind `meta.probes` of the fixture.
fn probe() -> Array3<f32> {
    let mut image = Array3::zeros((28, 28, 1));
    image[[5, 14, 0]] = 1.0;
    image
}

fn peak(image: &Array3<f32>) -> (usize, usize) {
    let mut best = ((0, 0), f32::NEG_INFINITY);
    for ((r, c, _), &v) in image.indexed_iter() {
        if v > best.1 {
            best = ((r, c), v);
        }
    }
    best.0
}

#[test]
fn the_probe_moves_where_keras_moves_it() {
    let generator = ImageDataGenerator::new();
    let cases = [
        (
            TransformParams {
                theta: 90.0,
                ..Default::default()
            },
            (13, 5),
        ),
        (
            TransformParams {
                tx: 3.0,
                ..Default::default()
            },
            (5, 11),
        ),
        (
            TransformParams {
                ty: 3.0,
                ..Default::default()
            },
            (2, 14),
        ),
    ];
    for (params, expected) in cases {
        let moved = generator.apply_transform(probe().view(), &params);
        assert_eq!(peak(&moved), expected, "{params:?}");
    }
}

/// Centre of mass (row, column) of a single-channel image.
fn centre_of_mass(image: &Array3<f32>) -> (f64, f64) {
    let (mut mass, mut row, mut col) = (0.0, 0.0, 0.0);
    for ((r, c, _), &v) in image.indexed_iter() {
        mass += f64::from(v);
        row += f64::from(v) * r as f64;
        col += f64::from(v) * c as f64;
    }
    (row / mass, col / mass)
}

#[test]
fn random_shifts_move_the_axis_they_name_on_a_non_square_image() {
    // 5 rows, 7 columns, one bright pixel in the middle.
    let mut image = Array3::<f32>::zeros((5, 7, 1));
    image[[2, 3, 0]] = 1.0;
    let horizontal = ImageDataGenerator::new().width_shift_range(0.2);
    let vertical = ImageDataGenerator::new().height_shift_range(0.2);
    for i in 0..50 {
        let mut rng = stream(7, Purpose::Augment, 0, i);
        let params = horizontal.random_transform((5, 7), &mut rng);
        // A fraction of the width (7), along the columns only.
        assert!(
            params.tx.abs() <= 0.2 * 7.0 && params.ty == 0.0,
            "{params:?}"
        );
        let moved = horizontal.apply_transform(image.view(), &params);
        for ((r, _, _), &v) in moved.indexed_iter() {
            assert!(r == 2 || v == 0.0, "row {r} lit by {params:?}");
        }
        let (row, col) = centre_of_mass(&moved);
        assert!((row - 2.0).abs() < 1e-6);
        // A positive tx moves the content left.
        assert!(
            (col - (3.0 - params.tx)).abs() < 1e-5,
            "{params:?}: column {col}"
        );

        let mut rng = stream(7, Purpose::Augment, 0, i);
        let params = vertical.random_transform((5, 7), &mut rng);
        // A fraction of the height (5), along the rows only.
        assert!(
            params.ty.abs() <= 0.2 * 5.0 && params.tx == 0.0,
            "{params:?}"
        );
        let moved = vertical.apply_transform(image.view(), &params);
        for ((_, c, _), &v) in moved.indexed_iter() {
            assert!(c == 3 || v == 0.0, "column {c} lit by {params:?}");
        }
        let (row, col) = centre_of_mass(&moved);
        assert!((col - 3.0).abs() < 1e-6);
        // A positive ty moves the content up.
        assert!(
            (row - (2.0 - params.ty)).abs() < 1e-5,
            "{params:?}: row {row}"
        );
    }
}

fn any_fill() -> impl Strategy<Value = FillMode> {
    prop_oneof![
        Just(FillMode::Nearest),
        Just(FillMode::Reflect),
        Just(FillMode::Wrap),
        Just(FillMode::Constant),
    ]
}

fn any_image() -> impl Strategy<Value = Array3<f32>> {
    (1usize..9, 1usize..9, 1usize..4).prop_flat_map(|(h, w, c)| {
        proptest::collection::vec(-100.0f32..100.0, h * w * c)
            .prop_map(move |v| Array3::from_shape_vec((h, w, c), v).unwrap())
    })
}

/// Images of any bit patterns, NaN and infinities included.
fn any_bits_image() -> impl Strategy<Value = Array3<f32>> {
    (1usize..9, 1usize..9, 1usize..4).prop_flat_map(|(h, w, c)| {
        proptest::collection::vec(any::<u32>().prop_map(f32::from_bits), h * w * c)
            .prop_map(move |v| Array3::from_shape_vec((h, w, c), v).unwrap())
    })
}

proptest! {
    #[test]
    fn transforms_keep_the_shape_and_the_value_range(
        image in any_image(),
        fill in any_fill(),
        cval in -200.0f32..200.0,
        seed in any::<u64>(),
    ) {
        let generator = ImageDataGenerator::new()
            .rotation_range(180.0)
            .width_shift_range(0.5)
            .height_shift_range(0.5)
            .shear_range(30.0)
            .zoom_range(0.5)
            .horizontal_flip(true)
            .vertical_flip(true)
            .fill_mode(fill)
            .cval(cval);
        let (h, w, _) = image.dim();
        let params = generator.random_transform((h, w), &mut stream(seed, Purpose::Augment, 0, 0));
        let out = generator.apply_transform(image.view(), &params);
        prop_assert_eq!(out.dim(), image.dim());

        let mut low = image.iter().copied().fold(f32::INFINITY, f32::min);
        let mut high = image.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if fill == FillMode::Constant {
            low = low.min(cval);
            high = high.max(cval);
        }
        for &v in out.iter() {
            prop_assert!(v >= low && v <= high, "{} outside [{}, {}]", v, low, high);
        }
    }

    #[test]
    fn zero_ranges_give_the_identity_to_the_bit(
        image in any_bits_image(),
        seed in any::<u64>(),
        index in any::<u64>(),
    ) {
        let generator = ImageDataGenerator::new();
        let (h, w, _) = image.dim();
        let mut rng = stream(seed, Purpose::Augment, 3, index);
        let params = generator.random_transform((h, w), &mut rng);
        prop_assert!(params.is_identity());
        let out = generator.apply_transform(image.view(), &params);
        let same = out.iter().zip(image.iter()).all(|(a, b)| a.to_bits() == b.to_bits());
        prop_assert!(same);
    }

    #[test]
    fn drawn_parameters_are_centred_and_within_their_ranges(seed in any::<u64>()) {
        let generator = ImageDataGenerator::new()
            .rotation_range(15.0)
            .width_shift_range(0.1)
            .height_shift_range(0.1)
            .zoom_range(0.1);
        let n = 2000;
        let draws: Vec<TransformParams> = (0..n)
            .map(|i| {
                let mut rng = stream(seed, Purpose::Augment, 0, i);
                generator.random_transform((28, 28), &mut rng)
            })
            .collect();
        for p in &draws {
            prop_assert!(p.theta.abs() <= 15.0 && p.tx.abs() <= 2.8 && p.ty.abs() <= 2.8);
            prop_assert!((0.9..=1.1).contains(&p.zx) && (0.9..=1.1).contains(&p.zy));
        }
        // Each mean must lie within 5 standard errors of the centre: a
        // uniform on [-a, a] has the standard deviation a / sqrt(3).
        let mean = |f: fn(&TransformParams) -> f64| draws.iter().map(f).sum::<f64>() / n as f64;
        let tolerance = |half_width: f64| 5.0 * half_width / 3f64.sqrt() / (n as f64).sqrt();
        prop_assert!(mean(|p| p.theta).abs() < tolerance(15.0));
        prop_assert!(mean(|p| p.tx).abs() < tolerance(2.8));
        prop_assert!(mean(|p| p.ty).abs() < tolerance(2.8));
        prop_assert!((mean(|p| p.zx) - 1.0).abs() < tolerance(0.1));
        prop_assert!((mean(|p| p.zy) - 1.0).abs() < tolerance(0.1));
    }
}

#[test]
fn images_without_a_channel_axis_are_refused_with_the_wanted_shape() {
    let x = ndarray::Array3::<f32>::zeros((10, 28, 28));
    let y = Array1::<f32>::zeros(10);
    let err = ImageDataGenerator::new()
        .flow(&x, &y, 4)
        .expect_err("rank 3 is refused");
    let message = err.to_string();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{message}");
    assert!(
        message.contains("(N, height, width, channels)"),
        "{message}"
    );
    assert!(message.contains("(10, 28, 28)"), "{message}");
}

#[test]
fn labels_must_match_the_images() {
    let x = Array4::<f32>::zeros((10, 4, 4, 1));
    let err = ImageDataGenerator::new()
        .flow(&x, &Array1::<f32>::zeros(9), 4)
        .expect_err("9 labels for 10 images are refused");
    assert!(err.to_string().contains("(9,)"), "{err}");
    let err = ImageDataGenerator::new()
        .flow(&x, &Array3::<f32>::zeros((10, 2, 2)), 4)
        .expect_err("labels of rank 3 are refused");
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
}

#[test]
fn bad_options_and_batch_sizes_are_refused_by_flow() {
    let x = Array4::<f32>::zeros((4, 3, 3, 1));
    let y = Array1::<f32>::zeros(4);
    let err = ImageDataGenerator::new()
        .zoom_range_pair(0.0, 1.5)
        .flow(&x, &y, 2)
        .err();
    assert!(matches!(err, Some(Error::InvalidArgument { ref name, .. }) if name == "zoom_range"));
    let err = ImageDataGenerator::new().flow(&x, &y, 0).err();
    assert!(matches!(err, Some(Error::InvalidArgument { ref name, .. }) if name == "batch_size"));
}

fn drain(flow: &mut Flow, epoch: usize) -> Vec<Batch> {
    flow.start_epoch(epoch).expect("the epoch starts");
    let mut batches = Vec::new();
    while let Some(batch) = flow.next_batch().expect("batches are made") {
        batches.push(batch);
    }
    batches
}

#[test]
fn u8_images_are_converted_without_wrapping() -> kerust::Result<()> {
    let mut x = Array4::<u8>::zeros((3, 2, 2, 1));
    x[[0, 0, 0, 0]] = 255;
    x[[1, 1, 1, 0]] = 200;
    let y = Array1::<u8>::from(vec![7, 8, 9]);
    let mut flow = ImageDataGenerator::new().flow(&x, &y, 3)?.shuffle(false);
    let batch = &drain(&mut flow, 0)[0];
    assert_eq!(batch.x[[0, 0, 0, 0]], 255.0);
    assert_eq!(batch.x[[1, 1, 1, 0]], 200.0);
    assert_eq!(batch.y.as_slice(), Some(&[7.0, 8.0, 9.0][..]));

    let mut flow = ImageDataGenerator::new()
        .rescale(1.0 / 255.0)
        .flow(&x, &y, 3)?
        .shuffle(false);
    let batch = &drain(&mut flow, 0)[0];
    assert_eq!(batch.x[[0, 0, 0, 0]], 1.0);
    Ok(())
}

/// 2000 images of 3x3 pixels whose every value is their index, and labels
/// `[i, 2i]`.
fn indexed_images(n: usize) -> (Array4<f32>, Array2<f32>) {
    let x = Array4::from_shape_fn((n, 3, 3, 1), |(i, _, _, _)| i as f32);
    let y = Array2::from_shape_fn((n, 2), |(i, k)| (i * (k + 1)) as f32);
    (x, y)
}

#[test]
fn a_pass_holds_every_image_once_with_its_label() -> kerust::Result<()> {
    let (x, y) = indexed_images(2000);
    let mut flow = ImageDataGenerator::new().flow(&x, &y, 32)?.seed(5);
    assert_eq!(flow.steps_per_epoch(), 63);
    for epoch in 0..2 {
        let batches = drain(&mut flow, epoch);
        let sizes: Vec<usize> = batches.iter().map(|b| b.x.shape()[0]).collect();
        assert_eq!(sizes.len(), 63);
        assert!(sizes[..62].iter().all(|&s| s == 32));
        assert_eq!(sizes[62], 16);

        let mut seen = HashSet::new();
        let mut order = Vec::new();
        for batch in &batches {
            assert_eq!(&batch.x.shape()[1..], &[3, 3, 1]);
            for (image, label) in batch.x.outer_iter().zip(batch.y.outer_iter()) {
                let index = image[[0, 0, 0]];
                assert!(image.iter().all(|&v| v == index));
                assert_eq!(label.as_slice(), Some(&[index, 2.0 * index][..]));
                assert!(seen.insert(index as usize), "image {index} twice");
                order.push(index as usize);
            }
        }
        assert_eq!(seen.len(), 2000);
        assert_ne!(order, (0..2000).collect::<Vec<_>>(), "shuffled");
    }
    Ok(())
}

#[test]
fn without_shuffle_the_images_come_in_order() -> kerust::Result<()> {
    let (x, y) = indexed_images(10);
    let mut flow = ImageDataGenerator::new().flow(&x, &y, 4)?.shuffle(false);
    let order: Vec<f32> = drain(&mut flow, 3)
        .iter()
        .flat_map(|b| {
            b.y.index_axis(ndarray::Axis(1), 0)
                .iter()
                .copied()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(order, (0..10).map(|i| i as f32).collect::<Vec<_>>());
    Ok(())
}

/// 100 MNIST-sized images of a soft diagonal stroke, different per image.
fn stroke_images(n: usize) -> (Array4<u8>, Array1<f32>) {
    let x = Array4::from_shape_fn((n, 28, 28, 1), |(i, r, c, _)| {
        let d = (r as f64 - c as f64 + (i % 11) as f64 - 5.0).abs();
        (255.0 * (-d * d / 8.0).exp()) as u8
    });
    let y = Array1::from_shape_fn(n, |i| (i % 10) as f32);
    (x, y)
}

fn augmenter() -> ImageDataGenerator {
    ImageDataGenerator::new()
        .rotation_range(15.0)
        .width_shift_range(0.1)
        .height_shift_range(0.1)
        .zoom_range(0.1)
        .rescale(1.0 / 255.0)
}

fn same_batches(a: &[Batch], b: &[Batch]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.x == b.x && a.y == b.y)
}

#[test]
fn one_seed_gives_the_same_batches_and_another_seed_others() -> kerust::Result<()> {
    let (x, y) = stroke_images(100);
    let first = drain(&mut augmenter().flow(&x, &y, 16)?.seed(42), 1);
    let again = drain(&mut augmenter().flow(&x, &y, 16)?.seed(42), 1);
    let other = drain(&mut augmenter().flow(&x, &y, 16)?.seed(43), 1);
    assert!(same_batches(&first, &again));
    assert!(!same_batches(&first, &other));
    Ok(())
}

#[test]
fn thread_counts_do_not_change_a_value() -> kerust::Result<()> {
    let (x, y) = stroke_images(100);
    let one = drain(&mut augmenter().flow(&x, &y, 16)?.seed(9).workers(1), 2);
    let two = drain(&mut augmenter().flow(&x, &y, 16)?.seed(9).workers(2), 2);
    let global = drain(&mut augmenter().flow(&x, &y, 16)?.seed(9), 2);
    assert!(same_batches(&one, &two));
    assert!(same_batches(&one, &global));
    Ok(())
}

#[test]
fn an_image_gets_its_transform_whatever_the_batch_layout() -> kerust::Result<()> {
    let (x, y) = stroke_images(40);
    let image_of = |batches: &[Batch]| -> Vec<Array3<f32>> {
        batches
            .iter()
            .flat_map(|batch| batch.x.outer_iter())
            .map(|image| {
                image
                    .to_owned()
                    .into_dimensionality()
                    .expect("rank 3 images")
            })
            .collect()
    };
    // Without shuffling, the images come in order whatever the batch size.
    let small = drain(&mut augmenter().flow(&x, &y, 3)?.shuffle(false).seed(1), 4);
    let large = drain(&mut augmenter().flow(&x, &y, 32)?.shuffle(false).seed(1), 4);
    assert_eq!(image_of(&small), image_of(&large));

    // And each is the generator's own draw from the stream (1, Augment, 4, i).
    let generator = augmenter();
    for (i, image) in image_of(&small).iter().enumerate() {
        let source: ArrayView3<u8> = x.index_axis(ndarray::Axis(0), i);
        let params =
            generator.random_transform((28, 28), &mut stream(1, Purpose::Augment, 4, i as u64));
        let expected = generator
            .apply_transform(source, &params)
            .mapv(|v| v * (1.0 / 255.0));
        assert_eq!(image, &expected, "image {i}");
    }
    Ok(())
}

#[test]
fn recycled_buffers_give_the_same_batches() -> kerust::Result<()> {
    let (x, y) = stroke_images(50);
    let fresh = drain(&mut augmenter().flow(&x, &y, 8)?.seed(3), 0);
    let mut flow = augmenter().flow(&x, &y, 8)?.seed(3);
    for _ in 0..2 {
        flow.start_epoch(0)?;
        let mut batches = Vec::new();
        while let Some(batch) = flow.next_batch()? {
            batches.push(batch.clone());
            flow.recycle(batch);
        }
        assert!(same_batches(&fresh, &batches));
    }
    Ok(())
}

#[test]
fn a_new_epoch_may_start_before_the_last_one_is_drained() -> kerust::Result<()> {
    let (x, y) = stroke_images(100);
    let mut flow = augmenter().flow(&x, &y, 4)?.seed(11).prefetch(2);
    flow.start_epoch(0)?;
    for _ in 0..3 {
        flow.next_batch()?;
    }
    let second = drain(&mut flow, 1);
    let expected = drain(&mut augmenter().flow(&x, &y, 4)?.seed(11), 1);
    assert_eq!(second.len(), 25);
    assert!(same_batches(&second, &expected));
    Ok(())
}

#[test]
fn a_flow_dropped_mid_epoch_stops_its_producer() -> kerust::Result<()> {
    let (x, y) = stroke_images(100);
    for workers in [None, Some(1), Some(2)] {
        let mut flow = augmenter().flow(&x, &y, 2)?.prefetch(1);
        if let Some(k) = workers {
            flow = flow.workers(k);
        }
        flow.start_epoch(0)?;
        flow.next_batch()?;
        drop(flow);
    }
    // A flow that never started, and one whose epoch never was read.
    drop(augmenter().flow(&x, &y, 2)?);
    let mut flow = augmenter().flow(&x, &y, 2)?;
    flow.start_epoch(0)?;
    drop(flow);
    Ok(())
}

#[test]
fn zero_workers_are_refused_when_the_epoch_starts() -> kerust::Result<()> {
    let (x, y) = indexed_images(4);
    let mut flow = ImageDataGenerator::new().flow(&x, &y, 2)?.workers(0);
    let err = flow.start_epoch(0).err();
    assert!(matches!(err, Some(Error::InvalidArgument { ref name, .. }) if name == "workers"));
    Ok(())
}

#[test]
fn the_preview_shows_originals_then_the_flow_s_epochs() -> kerust::Result<()> {
    let (x, _) = stroke_images(5);
    let generator = augmenter();
    let grid = generator.preview_grid(&x, 2, 3, 42)?;
    assert_eq!(grid.dim(), (2 * 28 + 2, 3 * 28 + 4, 1));
    // Row 1, column 0: image 1 as it is; column 2: image 1 in epoch 1.
    let original = grid.slice(ndarray::s![30..58, 0..28, ..]);
    let expected = x
        .index_axis(ndarray::Axis(0), 1)
        .mapv(|v| f32::from(v) * (1.0 / 255.0));
    assert_eq!(original, expected);
    let params = generator.random_transform((28, 28), &mut stream(42, Purpose::Augment, 1, 1));
    let augmented = generator
        .apply_transform(x.index_axis(ndarray::Axis(0), 1), &params)
        .mapv(|v| v * (1.0 / 255.0));
    assert_eq!(grid.slice(ndarray::s![30..58, 60..88, ..]), augmented);

    let err = generator.preview_grid(&x, 6, 3, 42).err();
    assert!(matches!(err, Some(Error::InvalidArgument { ref name, .. }) if name == "rows"));
    Ok(())
}

#[cfg(feature = "images")]
#[test]
fn the_preview_grid_saves_as_a_png() -> kerust::Result<()> {
    let (x, _) = stroke_images(4);
    let grid = augmenter().preview_grid(&x, 4, 6, 0)?;
    let folder = tempfile::tempdir().expect("a temporary folder");
    let path = folder.path().join("grid.png");
    kerust::preprocessing::image::save_grid_png(&path, grid.view())?;
    let bytes = std::fs::read(&path).expect("the file exists");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(
        std::fs::read_dir(folder.path()).expect("readable").count(),
        1
    );
    Ok(())
}
