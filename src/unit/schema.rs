//! The TOML schema of a unit file: what is syntactically a unit (read by
//! `decode`). Every field is optional and keeps its span, so that validation can
//! point at the offending value; meaning is given in `validate`.

use std::collections::BTreeMap;

use toml::Spanned;

/// A unit file as written. See `units/README.md` for each key.
#[derive(Debug, Default)]
pub struct RawUnit {
    pub description: Option<Spanned<String>>,
    pub command: Option<Spanned<RawCommand>>,
    /// `type`.
    pub service_type: Option<Spanned<String>>,
    pub ready: Option<Spanned<RawReady>>,
    pub ready_timeout: Option<Spanned<String>>,
    pub restart: Option<Spanned<String>>,
    pub restart_delay: Option<Spanned<String>>,
    pub restart_delay_max: Option<Spanned<String>>,
    pub start_limit_burst: Option<Spanned<u32>>,
    pub start_limit_interval: Option<Spanned<String>>,
    pub after: Option<Vec<Spanned<String>>>,
    pub requires: Option<Vec<Spanned<String>>>,
    pub stop_signal: Option<Spanned<NameOrNumber>>,
    pub stop_timeout: Option<Spanned<String>>,
    pub user: Option<Spanned<NameOrNumber>>,
    pub group: Option<Spanned<NameOrNumber>>,
    pub working_dir: Option<Spanned<String>>,
    pub env: Option<BTreeMap<Spanned<String>, Spanned<EnvValue>>>,
    pub env_file: Option<Spanned<String>>,
    pub limits: Option<BTreeMap<Spanned<String>, Spanned<RawLimit>>>,
    pub stdout: Option<Spanned<RawStdio>>,
    pub stderr: Option<Spanned<RawStdio>>,
    pub main: Option<Spanned<bool>>,
    pub enabled: Option<Spanned<bool>>,
    pub on_failure: Option<Spanned<String>>,
    pub watchdog: Option<Spanned<String>>,
    pub watchdog_signal: Option<Spanned<NameOrNumber>>,
    pub schedule: Option<Spanned<String>>,
    pub schedule_timezone: Option<Spanned<String>>,
    pub health: Option<Spanned<RawHealth>>,
    pub health_interval: Option<Spanned<String>>,
    pub health_timeout: Option<Spanned<String>>,
    pub health_retries: Option<Spanned<u32>>,
    pub health_start_period: Option<Spanned<String>>,
    pub on_unhealthy: Option<Spanned<String>>,
    pub log_buffer_lines: Option<Spanned<u32>>,
    pub memory_max: Option<Spanned<RawAmount>>,
    pub memory_high: Option<Spanned<RawAmount>>,
    pub memory_swap_max: Option<Spanned<RawAmount>>,
    pub cpus: Option<Spanned<RawAmount>>,
    pub cpu_weight: Option<Spanned<RawAmount>>,
    pub pids_max: Option<Spanned<RawAmount>>,
    pub io_weight: Option<Spanned<RawAmount>>,
}

/// Keys of a table, each with the keys of its own table value, if it has one.
pub struct Keys(pub &'static [(&'static str, Option<&'static Keys>)]);

const READY: Keys = Keys(&[("tcp", None), ("exec", None)]);
const HEALTH: Keys = Keys(&[("tcp", None), ("http", None), ("exec", None)]);
const STDIO: Keys = Keys(&[("file", None), ("max-size", None), ("max-files", None), ("tee", None)]);

/// The keys of [`RawUnit`] (a test keeps the two in step; `decode` reads them), for unknown-key
/// messages with suggestions. `env` and `limits` are checked in validation.
pub const UNIT_KEYS: Keys = Keys(&[
    ("description", None),
    ("command", None),
    ("type", None),
    ("ready", Some(&READY)),
    ("ready-timeout", None),
    ("restart", None),
    ("restart-delay", None),
    ("restart-delay-max", None),
    ("start-limit-burst", None),
    ("start-limit-interval", None),
    ("after", None),
    ("requires", None),
    ("stop-signal", None),
    ("stop-timeout", None),
    ("user", None),
    ("group", None),
    ("working-dir", None),
    ("env", None),
    ("env-file", None),
    ("limits", None),
    ("stdout", Some(&STDIO)),
    ("stderr", Some(&STDIO)),
    ("main", None),
    ("enabled", None),
    ("on-failure", None),
    ("watchdog", None),
    ("watchdog-signal", None),
    ("schedule", None),
    ("schedule-timezone", None),
    ("health", Some(&HEALTH)),
    ("health-interval", None),
    ("health-timeout", None),
    ("health-retries", None),
    ("health-start-period", None),
    ("on-unhealthy", None),
    ("log-buffer-lines", None),
    ("memory-max", None),
    ("memory-high", None),
    ("memory-swap-max", None),
    ("cpus", None),
    ("cpu-weight", None),
    ("pids-max", None),
    ("io-weight", None),
]);

/// A cgroup limit as written: a number, or text (`"512M"`, `"infinity"`);
/// validation says which a key takes.
#[derive(Debug, Clone)]
pub enum RawAmount {
    Integer(i64),
    Float(f64),
    Text(String),
}

/// `command` (and `ready.exec`): an argv array, or a string for `/bin/sh -c`.
#[derive(Debug, Clone)]
pub enum RawCommand {
    Exec(Vec<String>),
    Shell(String),
}

/// `ready = { tcp = "IP:PORT" }` or `ready = { exec = [...] }`.
#[derive(Debug, Default)]
pub struct RawReady {
    pub tcp: Option<Spanned<String>>,
    pub exec: Option<Spanned<RawCommand>>,
}

/// `health = { tcp = "IP:PORT" }`, `{ http = "http://IP:PORT/path" }` or `{ exec = ... }`.
#[derive(Debug, Default)]
pub struct RawHealth {
    pub tcp: Option<Spanned<String>>,
    pub http: Option<Spanned<String>>,
    pub exec: Option<Spanned<RawCommand>>,
}

/// Users, groups and signals: by name or by number.
#[derive(Debug)]
pub enum NameOrNumber {
    Number(u64),
    Name(String),
}

/// Environment values: integers and booleans are taken as their text (a
/// float is refused: its text would not be the one written).
#[derive(Debug)]
pub enum EnvValue {
    String(String),
    Integer(i64),
    Boolean(bool),
}

impl EnvValue {
    pub fn text(&self) -> String {
        match self {
            EnvValue::String(s) => s.clone(),
            EnvValue::Integer(n) => n.to_string(),
            EnvValue::Boolean(b) => b.to_string(),
        }
    }
}

/// One `limits` entry: `N`, `"infinity"`, or `{ soft = .., hard = .. }`.
#[derive(Debug)]
pub enum RawLimit {
    Both(LimitValue),
    Pair(SoftHard),
}

#[derive(Debug)]
pub struct SoftHard {
    pub soft: LimitValue,
    pub hard: LimitValue,
}

#[derive(Debug, Clone)]
pub enum LimitValue {
    Number(u64),
    Word(String),
}

/// `stdout`/`stderr`: `"log"`, `"inherit"`, `"null"` or `{ file = "/path" }`
/// (with `max-size`, `max-files`, `tee`).
#[derive(Debug)]
pub enum RawStdio {
    Word(String),
    File(StdioFile),
}

#[derive(Debug)]
pub struct StdioFile {
    // No spans inside: the value is located as a whole (serde's untagged
    // buffering had none to give, and messages stay as they were).
    pub file: String,
    pub max_size: Option<Size>,
    pub max_files: Option<u32>,
    pub tee: Option<bool>,
}

/// A size: bytes, or `"10M"` (K, M, G: powers of 1024).
#[derive(Debug, Clone)]
pub enum Size {
    Bytes(u64),
    Text(String),
}
