//! The generated pages render without a groff warning, and the completion
//! scripts load in bash.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs tend-gen into a fresh directory laid out as /usr/share/man is
/// (`man1/`, `man5/`), so that tendctl.1's `.so man1/tend-ctl.1` resolves.
fn generate() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tend-gen-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let status = Command::new(env!("CARGO_BIN_EXE_tend-gen")).arg(&dir).status().unwrap();
    assert!(status.success());
    dir
}

fn groff_warnings(page: &Path, cwd: &Path) -> String {
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(page)
        .current_dir(cwd)
        .output()
        .expect("groff is installed (Debian: groff-base)");
    assert!(out.status.success(), "groff failed on {}", page.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn man_pages_render_without_warnings_and_completions_load() {
    let dir = generate();
    let man = dir.join("man");
    for page in ["tend.1", "tend-init.1", "tend-ctl.1", "tend-boot.1", "tend.units.5"] {
        assert!(man.join(page).is_file(), "{page} missing");
    }
    // Where man finds them: man1/NAME.1, man5/NAME.5.
    let root = dir.join("share");
    for section in ["1", "5"] {
        std::fs::create_dir_all(root.join(format!("man{section}"))).unwrap();
    }
    for entry in std::fs::read_dir(&man).unwrap() {
        let path = entry.unwrap().path();
        let section = path.extension().unwrap().to_string_lossy().into_owned();
        let name = path.file_name().unwrap();
        std::fs::copy(&path, root.join(format!("man{section}")).join(name)).unwrap();
    }
    let mut warnings = String::new();
    for section in ["1", "5"] {
        for entry in std::fs::read_dir(root.join(format!("man{section}"))).unwrap() {
            let page = entry.unwrap().path();
            warnings.push_str(&groff_warnings(&page, &root));
        }
    }
    assert_eq!(warnings, "", "groff warned");

    // The unit page carries the reference's keys.
    let units = std::fs::read_to_string(man.join("tend.units.5")).unwrap();
    assert!(units.contains("restart\\-delay\\-max"), "{units}");

    for script in ["tend", "tendctl"] {
        let file = dir.join("completions/bash").join(script);
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -e; source {}; complete -p {script}", file.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "bash could not load {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
