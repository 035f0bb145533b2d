//! Models and where they take their batches from.

mod source;
pub use source::{epoch_order, gather_rows, ArraySource, Batch, BatchSource};
