//! What `predict` keeps in memory: the pieces' outputs and a few buffers,
//! not a copy of its input. The test binary has this one test, so that the
//! live bytes it tracks are its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use kerust::prelude::*;
use ndarray::Array4;

/// Tracks the bytes allocated and not yet freed, and their peak.
struct Tracking;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(live, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

#[test]
fn predict_keeps_its_outputs_not_its_pieces_inputs() {
    const MIB: usize = 1 << 20;
    let rows = 8192;
    let x = Array4::from_shape_fn((rows, 28, 28, 1), |(n, r, c, _)| {
        ((n + r * c) % 7) as f32 / 7.0
    });
    let mut model = Sequential::new()
        .input_shape([28, 28, 1])
        .add(Flatten::new())
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10).activation(Activation::Softmax));
    model.build().unwrap();
    // One thread, so that the peak does not depend on the machine's cores.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| model.predict(&x)).unwrap();

    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let probs = pool.install(|| model.predict(&x)).unwrap();
    let extra = PEAK.load(Ordering::SeqCst) - before;
    assert_eq!(probs.shape(), &[rows, 10]);

    // The 16 outputs of 512 rows and their joined copy take 0.6 MiB, the
    // buffers of one piece 2 MiB; the input is 24.5 MiB. Outputs that kept
    // the memory of their piece's flattened input held 24.5 MiB more.
    assert!(
        extra < 4 * MIB,
        "predict on {rows} rows held {:.1} MiB more at its peak",
        extra as f64 / MIB as f64
    );
}
