//! Unit files: the TOML description of a service (`units/NAME.toml`), its
//! validation, and the loading of a directory of them.
//!
//! Parsing and validation are pure: what validation needs of the
//! environment (programs, env files, users, limits) comes through the
//! [`Host`] trait, real ([`CheckEnv`]) or data ([`Fixture`]); loading reads
//! the unit files. Every problem of
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
pub mod users;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::supervisor::{Definition, ServiceConfig};

pub use envfile::parse_env_file;
pub use error::{Position, Problem, UnitError};
pub use host::{find_in, find_program, parse_cap_eff, read_users, CheckEnv, Entry, Fixture, Host, DEFAULT_PATH};
pub use limits::{Ceilings, Limit, Resource, INFINITY};
pub use load::{check, load_dir, Loaded};
pub use users::{parse_group, parse_passwd, Group, Id, IdError, RunAs, User, UserDb};
pub use validate::{duration_arg, parse_duration, MAX_DURATION};

/// A valid unit: everything the runtime needs to start, stop and restart
/// one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The file stem: `web` for `web.toml`.
    pub name: String,
    pub description: Option<String>,
    /// What to exec. The shell form is `["/bin/sh", "-c", STRING]`.
    pub argv: Vec<OsString>,
    pub form: CommandForm,
    /// `argv[0]` found in `PATH`, as seen from inside the root (for
    /// messages: exec looks it up again).
    pub program: PathBuf,
    pub ready: Option<Ready>,
    /// `user` and `group` resolved: ids, supplementary groups, login.
    pub run_as: RunAs,
    pub working_dir: Option<PathBuf>,
    /// `env-file` first, then `env`, a later key replacing an earlier one.
    pub env: Vec<(String, String)>,
    pub limits: BTreeMap<Resource, Limit>,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// What the supervisor decides with: type, restart policy, ordering,
    /// stop signal and timeouts, main, enabled.
    pub service: ServiceConfig,
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
    Exec { argv: Vec<OsString>, program: PathBuf },
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
    /// A unit for a command given on the command line (`tend init -- CMD`),
    /// with every default of a unit file.
    pub fn from_argv(name: &str, argv: Vec<OsString>) -> Unit {
        Unit {
            name: name.to_string(),
            description: None,
            program: argv.first().map(PathBuf::from).unwrap_or_default(),
            argv,
            form: CommandForm::Exec,
            ready: None,
            run_as: RunAs::default(),
            working_dir: None,
            env: Vec::new(),
            limits: BTreeMap::new(),
            stdout: Stdio::Log,
            stderr: Stdio::Log,
            service: ServiceConfig::default(),
        }
    }
}

/// The supervisor holds each unit whole; a reload restarts a service when
/// anything the runtime runs it with changed. Where `argv[0]` was found in
/// `PATH` and the description do not count: a program appearing earlier in
/// `PATH` must not restart a service.
impl Definition for Unit {
    fn config(&self) -> &ServiceConfig {
        &self.service
    }

    fn unchanged(&self, new: &Self) -> bool {
        // Destructured, so a new field needs a decision here.
        let Unit {
            name,
            description: _,
            argv,
            form,
            program: _,
            ready,
            run_as,
            working_dir,
            env,
            limits,
            stdout,
            stderr,
            service,
        } = self;
        let ready_same = match (ready, &new.ready) {
            (Some(Ready::Exec { argv: a, .. }), Some(Ready::Exec { argv: b, .. })) => a == b,
            (a, b) => a == b,
        };
        *name == new.name
            && *argv == new.argv
            && *form == new.form
            && ready_same
            && *run_as == new.run_as
            && *working_dir == new.working_dir
            && *env == new.env
            && *limits == new.limits
            && *stdout == new.stdout
            && *stderr == new.stderr
            && *service == new.service
    }
}

/// Whether `name` can name a unit: `[A-Za-z0-9_.@-]+`, not starting with `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c))
}
