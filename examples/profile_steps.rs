//! Runs a fixed number of training steps of the reference MLP, for counting
//! instructions with `valgrind --tool=callgrind` (whose counts, unlike
//! times, do not depend on the machine's load).
//!
//! ```sh
//! cargo build --release --example profile_steps
//! valgrind --tool=callgrind --dump-instr=no --callgrind-out-file=cg.out \
//!     ./target/release/examples/profile_steps steps 200
//! callgrind_annotate cg.out | head -40
//! ```
//!
//! Modes: `steps N` calls `train_on_batch` N times on the first 32 MNIST
//! training digits (after one warm-up step); `fit N` trains one epoch of
//! N batches of 32 with `fit` on arrays (shuffled, with the accuracy
//! metric), which adds the batch gathering and the bookkeeping of `fit`.
//! The last line printed is the mean time per step, which under valgrind
//! means little; on Linux it also gives the CPU time the training thread
//! had per step (from `/proc/thread-self/schedstat`), which a busy machine
//! inflates less than the wall-clock time.

use std::time::Instant;

use kerust::datasets::mnist;
use kerust::prelude::*;

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

fn main() -> kerust::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("steps");
    let count: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(200);
    let (train, _) = mnist::load_data()?;
    let mut model = reference_mlp();
    let started;
    let cpu_started;
    match mode {
        "steps" => {
            let train = train.take(32);
            let (x, y) = (train.images_f32(), train.labels());
            model.train_on_batch(&x, &y)?;
            cpu_started = cpu_ns();
            started = Instant::now();
            for _ in 0..count {
                model.train_on_batch(&x, &y)?;
            }
        }
        "fit" => {
            let train = train.take(32 * count);
            let (x, y) = (train.images_f32(), train.labels());
            let options = FitOptions::new().verbose(Verbosity::Silent).seed(42);
            cpu_started = cpu_ns();
            started = Instant::now();
            model.fit((&x, &y), options)?;
        }
        other => {
            eprintln!("unknown mode {other:?}: expected `steps N` or `fit N`");
            std::process::exit(2);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_ns()
        .zip(cpu_started)
        .map(|(end, start)| (end - start) as f64 / 1e3);
    let weights = model.get_weights();
    // FNV-1a over the weights' bits: equal only if every weight is.
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for v in weights.iter().flat_map(|w| w.iter()) {
        hash = (hash ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3);
    }
    println!("weights hash {hash:016x}");
    let per_step = |us: f64| us / count as f64;
    match cpu {
        Some(cpu) => println!(
            "{:.1} us/step, {:.1} us/step on the CPU",
            per_step(seconds * 1e6),
            per_step(cpu)
        ),
        None => println!("{:.1} us/step", per_step(seconds * 1e6)),
    }
    Ok(())
}

/// The calling thread's time on the CPU so far, in nanoseconds (Linux).
fn cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}
