//! Unit files, from bytes to `FILE:LINE:COL` errors: parsing, validation
//! and the checks across units (dependencies, cycles, `main`).
//!
//! Input: one or more unit files. A line `### NAME` starts the file
//! `NAME.toml`; text before the first such line is `web.toml`. Units are
//! checked against a fixture host (a directory made once per process) so
//! that the outcome does not depend on the machine's own `/bin`.
#![no_main]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tend::unit::{load_texts, Ceilings, CheckEnv, Resource, UserDb};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nredis:x:999:999::/var/lib/redis:/bin/false\nwww-data:x:33:33::/var/www:/bin/false\n";
const GROUP: &str = "root:x:0:\napp:x:1000:\nredis:x:999:\nadm:x:4:app\nwww-data:x:33:\n";
const PROGRAMS: &[&str] = &[
    "bin/sh",
    "bin/true",
    "bin/sleep",
    "usr/bin/curl",
    "usr/bin/redis-server",
    "usr/sbin/nginx",
    "usr/local/bin/app",
];

/// The fixture host: a few executables, an env file, a working directory.
/// One directory, `$TMPDIR/tend-fuzz-unit`, made once and kept for the
/// next run: built aside and renamed into place, so that parallel fuzzers
/// never see it half made.
fn host() -> &'static (CheckEnv, PathBuf) {
    static HOST: OnceLock<(CheckEnv, PathBuf)> = OnceLock::new();
    HOST.get_or_init(|| {
        let root = std::env::temp_dir().join("tend-fuzz-unit");
        if !root.exists() {
            let aside = root.with_extension(std::process::id().to_string());
            let made = make_root(&aside);
            assert!(
                made.is_ok(),
                "cannot make the fixture host {}: {made:?}",
                aside.display()
            );
            if std::fs::rename(&aside, &root).is_err() {
                // Another fuzzer made it first.
                let _ = std::fs::remove_dir_all(&aside);
            }
        }
        let env = CheckEnv {
            root: root.clone(),
            users: UserDb::parse(PASSWD, GROUP),
            ceilings: Ceilings([(Resource::Nofile, 1_048_576)].into()),
            cgroups: Default::default(),
            // The default PATH, not the fuzzer's: the fixture's programs
            // are under it.
            path: String::new(),
        };
        (env, root.join("etc/tend/units"))
    })
}

fn make_root(root: &Path) -> std::io::Result<()> {
    for program in PROGRAMS {
        let path = root.join(program);
        std::fs::create_dir_all(path.parent().unwrap_or(root))?;
        std::fs::write(&path, "")?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::create_dir_all(root.join("srv/app"))?;
    std::fs::create_dir_all(root.join("etc/tend/units"))?;
    std::fs::write(root.join("etc/tend/units/app.env"), "export A=1\nB='two'\n")?;
    std::fs::write(root.join("etc/app.env"), "C=3\n")
}

/// Splits the input into `(name, text)` files at `### NAME` lines.
fn files(text: &str) -> Vec<(&str, &str)> {
    let mut files = Vec::new();
    let (mut name, mut start) = ("web", 0);
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if let Some(next) = line.strip_prefix("### ") {
            files.push((name, &text[start..at]));
            name = next.trim_end();
            start = at + line.len();
        }
        at += line.len();
    }
    files.push((name, &text[start..]));
    files
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (env, dir) = host();
    let files = files(text);
    let loaded = load_texts(&files, env, dir);
    for e in loaded.all_errors() {
        let line = e.to_string();
        // `tend check` prints one error per line, naming its file first.
        assert!(line.starts_with(&e.file.display().to_string()), "{line}");
        assert!(!line.contains('\n'), "{line:?}");
        let Some(at) = e.at else { continue };
        assert!(at.line >= 1 && at.column >= 1, "{line}");
        // Errors in env files carry their own lines; check the units'.
        if e.file.extension().is_some_and(|x| x == "toml") {
            let name = e.file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            // A later file of the same name replaces an earlier one.
            let body = files.iter().rev().find(|(n, _)| *n == name).map_or("", |(_, t)| *t);
            let lines = body.split('\n').count();
            assert!(at.line <= lines, "{line}: only {lines} lines");
        }
    }
});
