//! kerust as a dependency of another crate.
//!
//! `tests/downstream-crate/` is a crate of its own that depends on kerust
//! by path with the default features off, as a user's crate would. It
//! implements `Layer` (an ELU with an `alpha`) and `Callback` outside
//! kerust, trains a model that uses them, checks the layer's gradient, and
//! saves the model and loads it again through a `LayerRegistry`. This test
//! builds and runs it with cargo; it catches what unit tests inside the
//! crate cannot: a trait method or type that a crate outside kerust cannot
//! name or implement, and a build without the default features.
//!
//! The crate is built in its own target folder, `downstream` inside
//! kerust's, because the `cargo test` running this test holds the lock on
//! kerust's. The first run compiles kerust and its dependencies once more
//! (under a minute on two cores); later runs reuse them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `downstream` inside the target folder of the `cargo test` that runs this.
fn target_dir(manifest_dir: &Path) -> PathBuf {
    let outer = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => manifest_dir.join(dir),
        _ => manifest_dir.join("target"),
    };
    outer.join("downstream")
}

#[test]
fn a_crate_outside_kerust_trains_checks_saves_and_reloads_its_own_layer() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crate_manifest = manifest_dir.join("tests/downstream-crate/Cargo.toml");
    let output = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--manifest-path"])
        .arg(&crate_manifest)
        .env("CARGO_TARGET_DIR", target_dir(manifest_dir))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", env!("CARGO")));

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the downstream crate failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("downstream ok:"),
        "expected `downstream ok: ...` as the last line; stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("predictions identical to the bit"),
        "stdout:\n{stdout}"
    );
}
