//! The fuzz harnesses keep building and working: `fuzz/run-ci` builds
//! every `cargo fuzz` target and runs each from its seeds for a fixed
//! number of executions (issue 15: CI runs each target briefly). A crash,
//! a hang or an allocation over the limit on any input fails the test.
//!
//! cargo-fuzz comes from crates.io: when `cargo fuzz` is missing, the test
//! installs it once into cargo's target directory. The toolchain is the
//! machine's own (fuzz/run-ci lets it take cargo fuzz's -Z flags).

use std::path::Path;
use std::process::Command;

/// The PATH under which `cargo fuzz` works, installing cargo-fuzz under
/// target/ if needed.
fn path_with_cargo_fuzz() -> String {
    let tools = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cargo-fuzz");
    let path = format!(
        "{}:{}",
        tools.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let found = Command::new("cargo")
        .args(["fuzz", "--version"])
        .env("PATH", &path)
        .output();
    if found.is_ok_and(|o| o.status.success()) {
        return path;
    }
    let status = Command::new("cargo")
        .args(["install", "--locked", "--quiet", "cargo-fuzz", "--root"])
        .arg(&tools)
        .status()
        .unwrap();
    assert!(status.success(), "cargo install cargo-fuzz failed");
    path
}

#[test]
fn every_fuzz_target_builds_and_survives_its_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("fuzz/run-ci"))
        .env("PATH", path_with_cargo_fuzz())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fuzz/run-ci failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every target ran: one "fuzz: TARGET: Done N runs" line each.
    let listed = std::fs::read_dir(root.join("fuzz/fuzz_targets")).unwrap().count();
    let ran = stdout.lines().filter(|l| l.contains(": Done ")).count();
    assert_eq!(ran, listed, "not every target ran:\n{stdout}");
}
