//! Tutorials: kerust explained step by step, one chapter per module.
//!
//! The chapters are the Markdown files of the repository's `docs/` folder,
//! included here so that rustdoc shows them and `cargo test --doc` runs
//! every example in them: the code you read is code that compiles and
//! passes today. Examples that need the MNIST files are compiled but not
//! run; the others train on small synthetic data.
//!
//! 1. [`getting_started`]: load MNIST, build, compile, fit, evaluate and
//!    predict.
//! 2. [`augmentation`]: the image augmenter, its options and Keras'
//!    conventions.
//! 3. [`callbacks_and_reports`]: early stopping, learning-rate schedules, CSV
//!    logs, the history, the classification report, the confusion matrix and
//!    plots.
//! 4. [`saving_and_loading`]: model files, weights, checkpoints and resuming,
//!    and reading the files from Python.
//! 5. [`custom_layer`]: writing, checking, training and loading a layer of
//!    your own.
//! 6. [`performance_and_reproducibility`]: seeds, threads, what runs in
//!    parallel, and the benches.
//! 7. [`coming_from_keras`]: Keras calls and their kerust counterparts, and
//!    where kerust differs on purpose.
//!
//! An appendix, [`performance_figures`], gives the measured cost of a
//! training step and of its parts, and where the time goes.

// Links between chapters are written in the Markdown files as references to
// the other files (`[augmentation]: augmentation.md`), which is what a
// repository page follows. `links.md` defines the same references for
// rustdoc, as intra-doc links to the chapter modules (and the picture of the
// augmentation chapter as a path from `target/doc/kerust/tutorial/*/` back
// to `docs/images/`). It comes first, and the first definition of a
// reference is the one Markdown uses.

#[doc = include_str!("links.md")]
#[doc = include_str!("../../docs/getting_started.md")]
pub mod getting_started {}

#[cfg_attr(
    feature = "images",
    doc = include_str!("links.md"),
    doc = include_str!("../../docs/augmentation.md")
)]
#[cfg_attr(
    not(feature = "images"),
    doc = "The augmentation chapter saves pictures: build the documentation \
           with the `images` feature to read it."
)]
pub mod augmentation {}

#[cfg_attr(
    feature = "plots",
    doc = include_str!("links.md"),
    doc = include_str!("../../docs/callbacks_and_reports.md")
)]
#[cfg_attr(
    not(feature = "plots"),
    doc = "The chapter on callbacks and reports draws plots: build the \
           documentation with the `plots` feature to read it."
)]
pub mod callbacks_and_reports {}

#[doc = include_str!("links.md")]
#[doc = include_str!("../../docs/saving_and_loading.md")]
pub mod saving_and_loading {}

#[doc = include_str!("links.md")]
#[doc = include_str!("../../docs/custom_layer.md")]
pub mod custom_layer {}

#[doc = include_str!("links.md")]
#[doc = include_str!("../../docs/performance_and_reproducibility.md")]
pub mod performance_and_reproducibility {}

#[doc = include_str!("links.md")]
#[doc = include_str!("../../docs/coming_from_keras.md")]
pub mod coming_from_keras {}

#[doc = include_str!("links.md")]
#[doc = include_str!("../../docs/performance.md")]
pub mod performance_figures {}

// The README's examples, compiled by `cargo test --doc` so that they cannot
// drift from the API either. Not part of the documentation.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
