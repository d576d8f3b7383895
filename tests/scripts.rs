//! The first ten minutes: the scripts a new user runs first stop with one
//! line saying what is missing and how to get it. No root needed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn script(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// (exit code, stderr) of a command.
fn run(cmd: &mut Command) -> (i32, String) {
    let out = output(cmd);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rootfs_build_refuses_a_missing_or_dynamic_busybox() {
    let dir = TempDir::new("build-busybox");
    for (busybox, says) in [
        ("/nonexistent/busybox", "no busybox at"),
        ("/bin/sh", "dynamically linked"),
    ] {
        let dest = dir.path("rootfs");
        let (code, err) = run(Command::new(script("rootfs-template/build"))
            .arg(&dest)
            .env("BUSYBOX", busybox));
        assert_eq!(code, 1, "{busybox}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(says) && err.contains("busybox-static"), "{err}");
        assert!(!dest.exists(), "nothing is assembled");
    }
}

#[test]
fn prereqs_name_the_rust_version_needed_and_how_to_get_it() {
    let dir = TempDir::new("prereqs");
    // A PATH with Debian 12's rustc and a cargo, and the usual tools.
    let bin = dir.path("bin");
    std::fs::create_dir(&bin).unwrap();
    for (name, body) in [
        ("rustc", "echo 'rustc 1.63.0 (4b91a6ea7 2022-08-08)'"),
        ("cargo", "exit 0"),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let (code, err) = run(Command::new(script(".ci/prereqs"))
        .env("PATH", &path)
        .env("HOME", dir.path("home")));
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let older = format!("rustc 1.63.0 is older than the {}", env!("CARGO_PKG_RUST_VERSION"));
    assert!(err.contains(&older), "{err}");
    assert!(err.contains("rustup"), "{err}");

    std::fs::remove_file(bin.join("rustc")).unwrap();
    let (code, err) = run(Command::new(script(".ci/prereqs"))
        .env("PATH", &path)
        .env("HOME", dir.path("home")));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no Rust toolchain") && err.contains("https://sh.rustup.rs"),
        "{err}"
    );
}
