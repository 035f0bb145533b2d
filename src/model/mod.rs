//! The model and what training returns.

mod history;

pub use history::History;
