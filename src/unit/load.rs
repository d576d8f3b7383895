//! Loading a directory of unit files, and the report of `tend check`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::deps::{self, Parsed};
use super::error::{Problem, UnitError};
use super::host::Host;
use super::parse::{parse, Source};
use super::validate::{validate, Checked, Ctx};
use super::{valid_name, Unit};

/// The outcome of loading a directory: the valid units, the invalid ones
/// with their errors, and errors that belong to no unit.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub units: BTreeMap<String, Unit>,
    /// Unit name (file stem) to its errors, never empty.
    pub invalid: BTreeMap<String, Vec<UnitError>>,
    /// A directory that cannot be read, file names that name no unit.
    pub errors: Vec<UnitError>,
}

impl Loaded {
    /// Every error, ordered by file and position.
    pub fn all_errors(&self) -> Vec<&UnitError> {
        let mut all: Vec<_> = self.errors.iter().chain(self.invalid.values().flatten()).collect();
        crate::sorted::sort_by(&mut all, |a, b| (&a.file, a.at).cmp(&(&b.file, b.at)));
        all
    }

    pub fn is_ok(&self) -> bool {
        self.errors.is_empty() && self.invalid.is_empty()
    }
}

/// What `tend check` says of a unit with cgroup limits where tend cannot
/// write a cgroup (the unit stays valid and runs without them).
pub const READ_ONLY: &str = "limits not applied: no writable cgroup (read-only or not delegated)";

/// Loads every `NAME.toml` in `dir`, in name order. Other files and hidden
/// files (`.NAME.toml`, editor leftovers) are ignored. Never fails: a
/// missing directory is one error, a broken unit is an invalid one.
pub fn load_dir(dir: &Path, env: &dyn Host) -> Loaded {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return dir_error(dir, crate::sys::describe(&e)),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    crate::sorted::sort(&mut paths);
    let mut loaded = Loaded::default();
    let mut parsed = Parsed::new();
    for path in paths.iter().filter(|p| is_unit_file(p)) {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            let name = path.file_stem().unwrap_or_default().to_string_lossy().into();
            loaded.errors.push(file_error(path, Problem::InvalidName { name }));
            continue;
        };
        parsed.insert(name.to_string(), load_file(path, name, env, dir));
    }
    (loaded.units, loaded.invalid) = deps::check(parsed);
    loaded
}

fn is_unit_file(path: &Path) -> bool {
    let hidden = path.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b"."));
    !hidden && path.extension().is_some_and(|e| e == "toml") && !path.is_dir()
}

fn dir_error(dir: &Path, reason: String) -> Loaded {
    Loaded {
        errors: vec![file_error(dir, Problem::NoDir { reason })],
        ..Loaded::default()
    }
}

fn file_error(file: &Path, problem: Problem) -> UnitError {
    UnitError {
        file: file.to_path_buf(),
        at: None,
        problem,
    }
}

/// Reads, parses and validates one file.
fn load_file(path: &Path, name: &str, env: &dyn Host, dir: &Path) -> (Option<Checked>, Vec<UnitError>) {
    if !valid_name(name) {
        return (None, vec![file_error(path, Problem::InvalidName { name: name.into() })]);
    }
    let text = match super::host::read_bounded(path) {
        Ok(text) => text,
        Err(e) => {
            return (
                None,
                vec![file_error(
                    path,
                    Problem::Read {
                        reason: crate::sys::describe(&e),
                    },
                )],
            )
        }
    };
    check_text(name, path, &text, env, dir)
}

/// Parses and validates the text of one unit file (its name from the file
/// stem). Pure but for what it asks `env` (programs, env files, users).
pub fn check_text(
    name: &str,
    file: &Path,
    text: &str,
    env: &dyn Host,
    unit_dir: &Path,
) -> (Option<Checked>, Vec<UnitError>) {
    let src = Source { file, text };
    let (raw, errors, bad) = parse(&src);
    let Some(raw) = raw else {
        return (None, in_file_order(file, errors));
    };
    let mut cx = Ctx {
        src: &src,
        env,
        unit_dir,
        errors,
    };
    let checked = validate(name, raw, &bad, &mut cx);
    (Some(checked), in_file_order(file, cx.errors))
}

/// [`load_dir`] on texts in memory, `(NAME, text)` for `dir/NAME.toml`: for
/// the fuzzers (`fuzz/`), which must not write files.
pub fn load_texts(files: &[(&str, &str)], env: &dyn Host, dir: &Path) -> Loaded {
    let mut parsed = Parsed::new();
    for &(name, text) in files {
        let path = dir.join(format!("{name}.toml"));
        let entry = if valid_name(name) {
            check_text(name, &path, text, env, dir)
        } else {
            let problem = Problem::InvalidName { name: name.into() };
            (None, vec![file_error(&path, problem)])
        };
        parsed.insert(name.to_string(), entry);
    }
    let (units, invalid) = deps::check(parsed);
    Loaded {
        units,
        invalid,
        errors: Vec::new(),
    }
}

/// Sorts by position; problems of other files (env files) come last.
fn in_file_order(file: &Path, mut errors: Vec<UnitError>) -> Vec<UnitError> {
    crate::sorted::sort_by_key(&mut errors, |e| (e.file != file, e.at));
    errors
}

/// The report of `tend check`: every error, one per line as
/// `FILE:LINE:COL: message`, then a summary line; and whether all is valid.
pub fn check(dir: &Path, env: &dyn Host) -> (String, bool) {
    let loaded = load_dir(dir, env);
    let mut report = String::new();
    for e in loaded.all_errors() {
        report.push_str(&format!("{e}\n"));
    }
    if *env.cgroups() == super::resources::Support::ReadOnly {
        for unit in loaded.units.values().filter(|u| !u.resources.is_empty()) {
            let file = dir.join(format!("{}.toml", unit.name));
            report.push_str(&format!("{}: {}\n", file.display(), READ_ONLY));
        }
    }
    let valid = loaded.units.len();
    let noun = if valid == 1 { "unit" } else { "units" };
    report.push_str(&format!("{valid} {noun} valid, {} invalid\n", loaded.invalid.len()));
    (report, loaded.is_ok())
}
