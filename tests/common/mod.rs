//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

/// Reads a JSON fixture from `tests/fixtures/`.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A nested JSON list of numbers as an f32 array (each number parses to the
/// exact float32 Keras wrote).
pub fn array(value: &Value) -> ArrayD<f32> {
    let mut shape = Vec::new();
    let mut probe = value;
    while let Value::Array(items) = probe {
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    let mut flat = Vec::new();
    flatten(value, &mut flat);
    ArrayD::from_shape_vec(IxDyn(&shape), flat).unwrap()
}

fn flatten(value: &Value, out: &mut Vec<f32>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        Value::Number(n) => out.push(n.to_string().parse::<f32>().unwrap()),
        other => panic!("not a number: {other}"),
    }
}

/// Asserts `|actual - expected| <= atol + rtol * |expected|` everywhere.
#[track_caller]
pub fn assert_close(
    actual: &ArrayD<f32>,
    expected: &ArrayD<f32>,
    rtol: f32,
    atol: f32,
    what: &str,
) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shapes differ");
    for (i, (a, e)) in actual.iter().zip(expected.iter()).enumerate() {
        let ok = (a - e).abs() <= atol + rtol * e.abs();
        assert!(ok, "{what}: element {i} is {a}, expected {e}");
    }
}
