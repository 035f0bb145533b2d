//! A training step allocates nothing of its own in the steady state: every
//! buffer lives in the layers, the optimizer and the model from step to
//! step. The one allocation left is inside matrixmultiply, which takes a
//! packing buffer for each matrix product it computes; the test counts those
//! and allows exactly that many per product. Of the five products in a step
//! of the reference MLP, the first layer's forward product runs in kerust's
//! own kernel on CPUs with AVX2 and FMA (its output is 128 columns wide)
//! and allocates nothing; the other four go to matrixmultiply.
//!
//! A deeper model's gradients of different shapes take turns in the model's
//! two gradient buffers, which keep their memory from shape to shape
//! ([`resize`](kerust::layers::resize)); the convolutional model's test
//! shows that they too stop allocating once warm.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use kerust::prelude::*;
use ndarray::{Array1, Array4};

/// Counts the allocations made by the thread that turned counting on, on
/// that thread, so that neither the test harness's own threads nor a test
/// running beside it add to the count. The step runs on the calling thread:
/// matrixmultiply's threading is off.
struct Counting;

thread_local! {
    static COUNTING_HERE: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// The allocations counted on this thread so far.
fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn counting(on: bool) {
    COUNTING_HERE.with(|c| c.set(on));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // A thread being torn down has no flag left; it is not counting.
        if COUNTING_HERE.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.with(|count| count.set(count.get() + 1));
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_training_step_of_the_reference_mlp_allocates_nothing_once_warm() {
    let x = Array4::from_shape_fn((32, 28, 28, 1), |(n, r, c, _)| {
        ((n + r * c) % 7) as f32 / 7.0
    });
    let y = Array1::from_shape_fn(32, |n| (n % 10) as f32);
    let mut model = Sequential::new()
        .input_shape([28, 28, 1])
        .add(Flatten::new())
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10).activation(Activation::Softmax));
    model
        .compile(
            Adam::new(),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    // The first step creates the buffers and the optimizer's moments.
    model.train_on_batch(&x, &y).unwrap();

    let per_product = allocations_of_one_product();
    let steps = 10;
    let products_per_step = products_in_matrixmultiply();
    let start = allocations();
    counting(true);
    for _ in 0..steps {
        model.train_on_batch(&x, &y).unwrap();
    }
    counting(false);
    let counted = allocations() - start;
    assert_eq!(counted, steps * products_per_step * per_product);
}

/// How many allocations one (32x784)(784x128) product makes by itself.
fn allocations_of_one_product() -> usize {
    let a = ndarray::Array2::<f32>::ones((32, 784));
    let b = ndarray::Array2::<f32>::ones((784, 128));
    let mut c = ndarray::Array2::<f32>::zeros((32, 128));
    let start = allocations();
    counting(true);
    ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, &mut c);
    counting(false);
    allocations() - start
}

/// How many of a step's five products go to matrixmultiply on this CPU: with
/// AVX2 and FMA, the first layer's forward product and weight gradient are
/// kerust's own.
fn products_in_matrixmultiply() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return 3;
        }
    }
    5
}

/// The same for a small convolutional model. Conv2D keeps its patch matrix
/// and its gradient buffers, so a warm step allocates only the packing
/// buffers of its products, all five in matrixmultiply: the convolution's
/// forward product and kernel gradient (its input gradient is skipped, as
/// it is the first layer), and Dense's three, its output being 10 wide.
#[test]
fn a_training_step_of_a_convolutional_model_allocates_nothing_once_warm() {
    let x = Array4::from_shape_fn((16, 12, 12, 1), |(n, r, c, _)| {
        ((n + r * 3 + c) % 5) as f32 / 5.0
    });
    let y = Array1::from_shape_fn(16, |n| (n % 10) as f32);
    let mut model = Sequential::new()
        .input_shape([12, 12, 1])
        .add(Conv2D::new(8, (3, 3)).activation(Activation::Relu))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(10).activation(Activation::Softmax));
    model
        .compile(
            Adam::new(),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model.train_on_batch(&x, &y).unwrap();

    let per_product = allocations_of_one_product();
    let steps = 10;
    let start = allocations();
    counting(true);
    for _ in 0..steps {
        model.train_on_batch(&x, &y).unwrap();
    }
    counting(false);
    let counted = allocations() - start;
    assert_eq!(counted, steps * 5 * per_product);
}
