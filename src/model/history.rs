//! What `fit` returns: the per-epoch figures.

use serde::{Deserialize, Serialize};

/// The figures of each epoch of training, by key, in the order logged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The epochs recorded, counted from zero.
    pub epochs: Vec<usize>,
    entries: Vec<(String, Vec<f64>)>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the figures of one epoch.
    pub fn push_epoch<K: AsRef<str>>(
        &mut self,
        epoch: usize,
        logs: impl IntoIterator<Item = (K, f64)>,
    ) {
        self.epochs.push(epoch);
        for (key, value) in logs {
            let key = key.as_ref();
            match self.entries.iter_mut().find(|(k, _)| k == key) {
                Some((_, values)) => values.push(value),
                None => self.entries.push((key.to_string(), vec![value])),
            }
        }
    }

    /// The values of `key`, one per epoch.
    pub fn get(&self, key: &str) -> Option<&[f64]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Number of epochs recorded.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether no epoch is recorded.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }
}
