//! Images per second of the augmenter on the first 4,096 MNIST training
//! digits (28x28x1), with the reference recipe's ranges: rotation 15
//! degrees, shifts 10 %, zoom 10 %. Each case runs on one thread and on every core, with pools built
//! by `rayon::ThreadPoolBuilder`.
//!
//! `transform` applies drawn transforms to a set of images in parallel;
//! `flow_epoch` drains one epoch of a `Flow` (batches of 32 made ahead on
//! the flow's own pool), which adds shuffling, batching and the labels.
//!
//! Run with `cargo bench --bench augment`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kerust::datasets::mnist;
use kerust::model::BatchSource;
use kerust::preprocessing::image::ImageDataGenerator;
use kerust::random::{stream, Purpose};
use ndarray::{Array1, Array4, ArrayViewMut3, Axis};
use rayon::prelude::*;

const IMAGES: usize = 4096;

/// The first training digits of MNIST, from the crate's `data/mnist`.
fn images() -> (Array4<u8>, Array1<f32>) {
    let (train, _) = mnist::load_data().expect("MNIST in data/mnist (see README.md)");
    let train = train.take(IMAGES);
    let x = train
        .images()
        .clone()
        .insert_axis(Axis(3))
        .as_standard_layout()
        .into_owned();
    (x, train.labels())
}

fn augmenter() -> ImageDataGenerator {
    ImageDataGenerator::new()
        .rotation_range(15.0)
        .width_shift_range(0.1)
        .height_shift_range(0.1)
        .zoom_range(0.1)
        .rescale(1.0 / 255.0)
}

fn thread_counts() -> Vec<usize> {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    if all > 1 {
        vec![1, all]
    } else {
        vec![1]
    }
}

fn bench_transform(c: &mut Criterion) {
    let (x, _) = images();
    let generator = augmenter();
    let mut out = Array4::<f32>::zeros((IMAGES, 28, 28, 1));
    let mut group = c.benchmark_group("augment_28x28x1");
    group.throughput(Throughput::Elements(IMAGES as u64));
    for threads in thread_counts() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        group.bench_with_input(BenchmarkId::new("transform", threads), &threads, |b, _| {
            b.iter(|| {
                let values = out.as_slice_mut().expect("a standard-layout array");
                pool.install(|| {
                    values
                        .par_chunks_mut(28 * 28)
                        .enumerate()
                        .for_each(|(i, image)| {
                            let mut rng = stream(0, Purpose::Augment, 0, i as u64);
                            let params = generator.random_transform((28, 28), &mut rng);
                            let source = x.index_axis(Axis(0), i);
                            let image = ArrayViewMut3::from_shape((28, 28, 1), image)
                                .expect("one image per chunk");
                            generator
                                .apply_transform_into(source, &params, image)
                                .expect("same shapes");
                        });
                });
                black_box(&out);
            });
        });
    }
    group.finish();
}

fn bench_flow_epoch(c: &mut Criterion) {
    let (x, y) = images();
    let mut group = c.benchmark_group("augment_28x28x1");
    group.throughput(Throughput::Elements(IMAGES as u64));
    for threads in thread_counts() {
        let mut flow = augmenter()
            .flow(&x, &y, 32)
            .expect("a valid flow")
            .seed(42)
            .workers(threads);
        let mut epoch = 0;
        group.bench_with_input(BenchmarkId::new("flow_epoch", threads), &threads, |b, _| {
            b.iter(|| {
                flow.start_epoch(epoch).expect("the epoch starts");
                epoch += 1;
                while let Some(batch) = flow.next_batch().expect("a batch") {
                    black_box(&batch);
                    flow.recycle(batch);
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_transform, bench_flow_epoch);
criterion_main!(benches);
