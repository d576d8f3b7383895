//! The Debian package (needs root for dpkg): packaging/build-deb builds it,
//! it installs into a scratch root with `dpkg --root`, and what it installs
//! works there: the static tend and the tendctl link, man pages found by
//! man, completions where each shell looks (bash loads its script), the unit
//! reference and examples, and a tend-boot@.service that
//! `systemd-analyze verify` accepts.
//!
//! cargo-deb comes from crates.io: when `cargo deb` is missing, the test
//! installs it once into cargo's target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::TempDir;

/// `cargo deb` on PATH, installing cargo-deb under target/ if needed; the
/// PATH to use.
fn path_with_cargo_deb() -> String {
    let tools = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cargo-deb");
    let path = format!(
        "{}:{}",
        tools.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let found = Command::new("cargo")
        .args(["deb", "--version"])
        .env("PATH", &path)
        .output();
    if found.is_ok_and(|o| o.status.success()) {
        return path;
    }
    let status = Command::new("cargo")
        .args(["install", "--locked", "--quiet", "cargo-deb", "--root"])
        .arg(&tools)
        .status()
        .unwrap();
    assert!(status.success(), "cargo install cargo-deb failed");
    path
}

fn build_deb() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("packaging/build-deb"))
        .current_dir(root)
        .env("PATH", path_with_cargo_deb())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build-deb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A root dpkg can install into: its database, empty.
fn scratch_root(dir: &Path) {
    for sub in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("var/lib/dpkg/status"), "").unwrap();
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

#[test]
fn the_deb_installs_and_its_files_work_root() {
    let deb = build_deb();
    assert!(
        deb.file_name().unwrap().to_string_lossy().starts_with("tend_"),
        "{}",
        deb.display()
    );
    let dir = TempDir::new("deb");
    let root = dir.path("root");
    scratch_root(&root);
    ok(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--log=/dev/null", "--force-not-root", "-i"])
        .arg(&deb));

    // The binary, static, and the link that makes it the ctl client.
    let tend = root.join("usr/bin/tend");
    assert!(ok(Command::new("file").arg("-L").arg(&tend)).contains("static"));
    assert_eq!(
        std::fs::read_link(root.join("usr/bin/tendctl")).unwrap(),
        Path::new("tend")
    );
    let help = ok(Command::new(root.join("usr/bin/tendctl")).arg("--help"));
    assert!(help.contains("status"), "{help}");

    // Man pages where man looks.
    let man = root.join("usr/share/man");
    for page in ["tend", "tend-init", "tend-ctl", "tend-boot", "tendctl", "tend.units"] {
        let found = ok(Command::new("man").arg("-w").arg(page).env("MANPATH", &man));
        assert!(found.starts_with(&*man.to_string_lossy()), "{page}: {found}");
    }

    // Completions where each shell looks; bash loads its own.
    for file in [
        "usr/share/bash-completion/completions/tend",
        "usr/share/bash-completion/completions/tendctl",
        "usr/share/zsh/vendor-completions/_tend",
        "usr/share/fish/vendor_completions.d/tend.fish",
    ] {
        assert!(root.join(file).is_file(), "{file} missing");
    }
    let script = root.join("usr/share/bash-completion/completions/tend");
    let loaded = ok(Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p tend", script.display())));
    assert!(loaded.contains("tend"), "{loaded}");

    // The unit reference and examples.
    let doc = root.join("usr/share/doc/tend");
    for file in ["units.md", "examples/web.toml", "copyright"] {
        assert!(doc.join(file).is_file(), "{file} missing");
    }

    // The unit verifies against this root (its ExecStart is the packaged
    // tend). systemd-analyze needs the targets it orders against there too.
    let units = root.join("lib/systemd/system");
    assert!(units.join("tend-boot@.service").is_file());
    for entry in std::fs::read_dir("/lib/systemd/system").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if (name.ends_with(".target") || name.ends_with(".slice")) && path.is_file() && !path.is_symlink() {
            std::fs::copy(&path, units.join(&name)).unwrap();
        }
    }
    ok(Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg("tend-boot@demo.service")
        .env("MANPATH", &man));
}
