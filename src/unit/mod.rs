//! Unit files: the TOML description of a service (`units/NAME.toml`), its
//! validation, and the loading of a directory of them.
//!
//! Parsing and validation are pure; loading reads the unit files, their
//! env files, and looks up commands below a root directory. Every problem of
//! every file is gathered with its position; a broken unit never stops the
//! others. The keys are documented in `units/README.md`.

mod deps;
mod envfile;
mod error;
mod host;
mod limits;
mod load;
mod parse;
mod schema;
mod suggest;
mod users;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::supervisor::{RestartPolicy, ServiceConfig, ServiceType};

pub use envfile::parse_env_file;
pub use error::{Position, Problem, UnitError};
pub use host::{find_program, parse_cap_eff, CheckEnv, DEFAULT_PATH};
pub use limits::{Ceilings, Limit, Resource, INFINITY};
pub use load::{check, load_dir, Loaded};
pub use users::{parse_group, parse_passwd, Group, User};

/// A valid unit: everything the runtime needs to start, stop and restart
/// one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The file stem: `web` for `web.toml`.
    pub name: String,
    pub description: Option<String>,
    /// What to exec. The shell form is `["/bin/sh", "-c", STRING]`.
    pub argv: Vec<String>,
    pub form: CommandForm,
    /// `argv[0]` found in `PATH`, as seen from inside the root.
    pub program: PathBuf,
    pub service_type: ServiceType,
    pub ready: Option<Ready>,
    pub ready_timeout: Option<Duration>,
    pub restart: RestartPolicy,
    pub restart_delay: Duration,
    pub restart_delay_max: Duration,
    pub start_limit_burst: u32,
    pub start_limit_interval: Duration,
    pub after: Vec<String>,
    pub requires: Vec<String>,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    /// `None`: keep tend's own.
    pub uid: Option<u32>,
    /// `None`: keep tend's own (a numeric `user` without a passwd entry and
    /// without `group` leaves the group unchanged, as Docker does).
    pub gid: Option<u32>,
    pub working_dir: Option<PathBuf>,
    /// `env-file` first, then `env`, a later key replacing an earlier one.
    pub env: Vec<(String, String)>,
    pub limits: BTreeMap<Resource, Limit>,
    pub stdout: Stdio,
    pub stderr: Stdio,
    pub main: bool,
    pub enabled: bool,
}

/// How `command` was written, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandForm {
    /// An array: exec'd as is.
    Exec,
    /// A string: run by `/bin/sh -c`.
    Shell,
}

/// How a simple service shows it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// A TCP connect to this address succeeds.
    Tcp(SocketAddr),
    /// This command exits 0 (run repeatedly until it does).
    Exec { argv: Vec<String>, program: PathBuf },
}

/// Where a service's stdout or stderr goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdio {
    /// Captured by tend, each line prefixed with the service name.
    Log,
    /// tend's own stdout/stderr.
    Inherit,
    /// `/dev/null`.
    Null,
    /// Appended to this file (created if missing).
    File(PathBuf),
}

impl Unit {
    /// The supervisor's view of this unit.
    pub fn service_config(&self) -> ServiceConfig {
        ServiceConfig {
            service_type: self.service_type,
            has_ready_check: self.ready.is_some(),
            ready_timeout: self.ready_timeout,
            restart: self.restart,
            restart_delay: self.restart_delay,
            restart_delay_max: self.restart_delay_max,
            start_limit_burst: self.start_limit_burst,
            start_limit_interval: self.start_limit_interval,
            after: self.after.clone(),
            requires: self.requires.clone(),
            stop_signal: self.stop_signal,
            stop_timeout: self.stop_timeout,
            main: self.main,
            enabled: self.enabled,
            revision: 0,
        }
    }

    /// A unit for a command given on the command line (`tend init -- CMD`),
    /// with every default of a unit file.
    pub fn from_argv(name: &str, argv: Vec<String>) -> Unit {
        let defaults = ServiceConfig::default();
        Unit {
            name: name.to_string(),
            description: None,
            program: argv.first().map(PathBuf::from).unwrap_or_default(),
            argv,
            form: CommandForm::Exec,
            service_type: defaults.service_type,
            ready: None,
            ready_timeout: None,
            restart: defaults.restart,
            restart_delay: defaults.restart_delay,
            restart_delay_max: defaults.restart_delay_max,
            start_limit_burst: defaults.start_limit_burst,
            start_limit_interval: defaults.start_limit_interval,
            after: Vec::new(),
            requires: Vec::new(),
            stop_signal: defaults.stop_signal,
            stop_timeout: defaults.stop_timeout,
            uid: None,
            gid: None,
            working_dir: None,
            env: Vec::new(),
            limits: BTreeMap::new(),
            stdout: Stdio::Log,
            stderr: Stdio::Log,
            main: false,
            enabled: true,
        }
    }
}

/// Whether `name` can name a unit: `[A-Za-z0-9_.@-]+`, not starting with `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c))
}
