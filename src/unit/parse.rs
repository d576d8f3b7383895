//! TOML text to [`RawUnit`], gathering every syntax, unknown-key and type
//! error with its position instead of stopping at the first.
//!
//! How: parse into a spanned `DeTable` (recovering from syntax errors), drop
//! unknown keys after reporting them with a suggestion, deserialize each key
//! on its own to find every type error, then the remaining keys together.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::decode;
use super::error::{Problem, UnitError};
use super::schema::{Keys, RawUnit, UNIT_KEYS};
use super::suggest::{position, suggest};

/// A file being checked: locates problems by byte span.
pub struct Source<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    pub fn error(&self, span: Range<usize>, problem: Problem) -> UnitError {
        UnitError {
            file: self.file.to_path_buf(),
            at: Some(position(self.text, span.start)),
            problem,
        }
    }
}

/// The unit as far as it is well-typed, and the problems found. The raw unit
/// is `None` when the text is not TOML at all. Keys with problems are
/// absent from it and listed in the last value, so validation can tell
/// "missing" from "given but wrong".
pub fn parse(src: &Source) -> (Option<RawUnit>, Vec<UnitError>, Vec<String>) {
    let (mut table, syntax) = DeTable::parse_recoverable(src.text);
    if !syntax.is_empty() {
        let mut errors: Vec<_> = syntax.iter().map(|e| toml_error(src, e, None)).collect();
        // Recovery often reports the same slip several times on a line.
        errors.dedup_by_key(|e| e.at.map(|p| p.line));
        return (None, errors, Vec::new());
    }
    let mut errors = Vec::new();
    let mut bad = unknown_keys(src, table.get_mut(), &UNIT_KEYS, None, &mut errors);
    let mut raw = RawUnit::default();
    for (key, value) in table.get_ref().iter() {
        if let Err(e) = decode::field(&mut raw, key.get_ref(), value) {
            let problem = Problem::Type {
                key: key.get_ref().to_string(),
                message: e.message,
            };
            errors.push(src.error(e.span, problem));
            bad.push(key.get_ref().to_string());
        }
    }
    (Some(raw), errors, bad)
}

fn toml_error(src: &Source, e: &toml::de::Error, key: Option<&str>) -> UnitError {
    let message = e.message().trim_end_matches('.').to_string();
    let problem = match key {
        Some(key) => Problem::Type {
            key: key.to_string(),
            message,
        },
        None => Problem::Syntax { message },
    };
    src.error(e.span().unwrap_or(0..0), problem)
}

/// Reports and removes keys not in `keys`, descending into known tables.
/// Returns the removed top-level keys.
fn unknown_keys(
    src: &Source,
    table: &mut DeTable,
    keys: &Keys,
    name: Option<&str>,
    errors: &mut Vec<UnitError>,
) -> Vec<String> {
    let mut unknown = Vec::new();
    for (key, value) in table.iter_mut() {
        let known = keys.0.iter().find(|(k, _)| *k == key.get_ref());
        match (known, value.get_mut()) {
            (None, _) => {
                let hint = suggest(key.get_ref(), keys.0.iter().map(|(k, _)| *k));
                let problem = Problem::UnknownKey {
                    key: key.get_ref().to_string(),
                    table: name.map(str::to_string),
                    hint,
                };
                errors.push(src.error(key.span(), problem));
                unknown.push(key.get_ref().to_string());
            }
            (Some((k, Some(inner))), DeValue::Table(t)) => {
                unknown_keys(src, t, inner, Some(k), errors);
            }
            _ => {}
        }
    }
    if !unknown.is_empty() {
        // Rebuilt rather than removed from: `remove` would be a copy of
        // the B-tree's rebalancing for this one map type.
        let mut known = DeTable::new();
        for (key, value) in std::mem::take(table) {
            if !unknown.iter().any(|u| u == key.get_ref()) {
                known.insert(key, value);
            }
        }
        *table = known;
    }
    unknown
}
