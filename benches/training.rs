//! Criterion benches of the training machinery at the reference shapes:
//! Dense forward and backward (32x784 -> 128), one training step of the
//! reference MLP at batch 32, an epoch on a 6,000-sample subset with and
//! without augmentation, prediction on 10,000 images, one Adam update, and
//! the matrix products alone for comparison.
//!
//! Run: `cargo bench --bench training`. The data are the first MNIST
//! training digits from the crate's `data/mnist`: four fifths of their
//! pixels are blank, which the first layer's products skip.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kerust::datasets::mnist;
use kerust::prelude::*;
use kerust::preprocessing::image::ImageDataGenerator;
use kerust::random::{stream, Purpose};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, Array4, ArrayD, IxDyn};

/// The first `n` MNIST training digits, scaled to [0, 1], and their labels.
fn images(n: usize) -> (Array4<f32>, Array1<f32>) {
    let (train, _) = mnist::load_data().expect("MNIST in data/mnist (see README.md)");
    let train = train.take(n);
    (train.images_f32(), train.labels())
}

fn reference_mlp() -> Sequential {
    let mut model = Sequential::new()
        .input_shape([28, 28, 1])
        .seed(42)
        .add(Flatten::new())
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10).activation(Activation::Softmax));
    model
        .compile(
            Adam::new(),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .expect("a valid model");
    model
}

fn dense(c: &mut Criterion) {
    let mut layer = Dense::new(128).activation(Activation::Relu);
    layer
        .build(&[784], &mut stream(0, Purpose::Init, 0, 0))
        .unwrap();
    let x = images(32)
        .0
        .into_shape_with_order((32, 784))
        .unwrap()
        .into_dyn();
    let mut y = ArrayD::zeros(IxDyn(&[0]));
    layer.forward(x.view(), &mut y, true).unwrap();
    let grad = y.mapv(|v| v - 0.5);
    let mut group = c.benchmark_group("dense_784x128_batch32");
    group.bench_function("forward", |b| {
        b.iter(|| layer.forward(x.view(), &mut y, true).unwrap())
    });
    let mut dx = ArrayD::zeros(IxDyn(&[0]));
    group.bench_function("backward_with_input_gradient", |b| {
        b.iter(|| {
            layer
                .backward(x.view(), y.view(), grad.view(), Some(&mut dx))
                .unwrap()
        })
    });
    group.bench_function("backward_first_layer", |b| {
        b.iter(|| {
            layer
                .backward(x.view(), y.view(), grad.view(), None)
                .unwrap()
        })
    });
    group.finish();
}

/// The five products of one step of the reference MLP, alone.
fn matrix_products(c: &mut Criterion) {
    let x = images(32).0.into_shape_with_order((32, 784)).unwrap();
    let w1 = Array2::<f32>::from_elem((784, 128), 0.01);
    let w2 = Array2::<f32>::from_elem((128, 10), 0.01);
    let mut h = Array2::<f32>::zeros((32, 128));
    let mut o = Array2::<f32>::zeros((32, 10));
    let mut dw1 = Array2::<f32>::zeros((784, 128));
    let mut dw2 = Array2::<f32>::zeros((128, 10));
    let mut dh = Array2::<f32>::zeros((32, 128));
    c.bench_function("matmul_five_products_of_a_step", |b| {
        b.iter(|| {
            general_mat_mul(1.0, &x, &w1, 0.0, &mut h);
            general_mat_mul(1.0, &h, &w2, 0.0, &mut o);
            general_mat_mul(1.0, &h.t(), &o, 0.0, &mut dw2);
            general_mat_mul(1.0, &o, &w2.t(), 0.0, &mut dh);
            general_mat_mul(1.0, &x.t(), &dh, 0.0, &mut dw1);
        })
    });
}

/// One Adam update of the reference MLP's 101,770 weights.
fn adam_update(c: &mut Criterion) {
    let mut adam = Adam::new();
    let mut kernel = vec![0.01_f32; 784 * 128];
    let mut rest = vec![0.01_f32; 128 + 128 * 10 + 10];
    let grad_kernel = vec![0.001_f32; kernel.len()];
    let grad_rest = vec![0.001_f32; rest.len()];
    c.bench_function("adam_update_101770", |b| {
        b.iter(|| {
            adam.begin_step();
            adam.update(0, &mut kernel, &grad_kernel);
            adam.update(1, &mut rest, &grad_rest);
        })
    });
}

fn training_step(c: &mut Criterion) {
    let (x, y) = images(32);
    let mut model = reference_mlp();
    model.train_on_batch(&x, &y).unwrap();
    c.bench_function("train_step_batch32", |b| {
        b.iter(|| model.train_on_batch(&x, &y).unwrap())
    });
}

fn epoch(c: &mut Criterion) {
    let (x, y) = images(6_000);
    let mut group = c.benchmark_group("epoch_6000_samples_batch32");
    group.sample_size(10);
    group.throughput(Throughput::Elements(6_000));
    group.bench_function("no_augmentation", |b| {
        b.iter_batched(
            reference_mlp,
            |mut model| {
                let options = FitOptions::new().verbose(Verbosity::Silent).seed(42);
                model.fit((&x, &y), options).unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("with_augmentation", |b| {
        let augmenter = ImageDataGenerator::new()
            .rotation_range(15.0)
            .width_shift_range(0.1)
            .height_shift_range(0.1)
            .zoom_range(0.1);
        b.iter_batched(
            reference_mlp,
            |mut model| {
                let flow = augmenter.flow(&x, &y, 32).unwrap().seed(42);
                let options = FitOptions::new().verbose(Verbosity::Silent);
                model.fit(flow, options).unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn predict(c: &mut Criterion) {
    let (x, _) = images(10_000);
    let mut model = reference_mlp();
    let mut group = c.benchmark_group("predict_10000");
    group.sample_size(20);
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("all_threads", |b| b.iter(|| model.predict(&x).unwrap()));
    group.finish();
}

criterion_group!(
    benches,
    dense,
    matrix_products,
    adam_update,
    training_step,
    epoch,
    predict
);
criterion_main!(benches);
