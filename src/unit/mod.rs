//! Unit files: the TOML description of a service (`units/NAME.toml`), its
//! validation, and the loading of a directory of them.
//!
//! Parsing and validation are pure: what validation needs of the
//! environment (programs, env files, users, limits) comes through the
//! [`Host`] trait, real ([`CheckEnv`]) or data ([`Fixture`]); loading reads
//! the unit files. Every problem of
//! every file is gathered with its position; a broken unit never stops the
//! others. The keys are documented in `units/README.md`.

mod decode;
mod deps;
mod envfile;
mod error;
mod host;
mod limits;
mod load;
mod parse;
pub use crate::resources;
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
pub use host::{
    find_in, find_program, inherited_path, parse_cap_eff, read_users, CheckEnv, Entry, Fixture, Host, DEFAULT_PATH,
};
pub use limits::{Ceilings, Limit, Resource, INFINITY};
pub use load::{check, load_dir, Loaded, READ_ONLY};
#[doc(hidden)]
pub use load::{check_text, load_texts};
pub use resources::Resources;
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
    pub ready: Option<Box<Ready>>,
    /// The liveness check; its timing is in `service.health`.
    pub health: Option<Box<HealthCheck>>,
    /// `user` and `group` resolved: ids, supplementary groups, login.
    pub run_as: RunAs,
    pub working_dir: Option<PathBuf>,
    /// `env-file` first, then `env`, a later key replacing an earlier one.
    pub env: Vec<(String, String)>,
    pub limits: BTreeMap<Resource, Limit>,
    /// Cgroup limits (`memory-max`, `cpus`...): applied in place on reload.
    pub resources: Resources,
    pub stdout: Stdio,
    pub stderr: Stdio,
    /// Captured lines kept for `tend ctl logs`.
    pub log_buffer_lines: usize,
    /// What the supervisor decides with: type, restart policy, ordering,
    /// stop signal and timeouts, main, enabled.
    pub service: ServiceConfig,
}

/// Captured lines kept per service for `tend ctl logs` by default.
pub const DEFAULT_LOG_BUFFER_LINES: usize = 1000;

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

/// A liveness check (`health`), probed while the service is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheck {
    /// A TCP connect to this address succeeds.
    Tcp(SocketAddr),
    /// A GET of `path` at `addr` answers 2xx or 3xx; `host` is the URL's
    /// authority, sent as `Host:`.
    Http {
        addr: SocketAddr,
        host: String,
        path: String,
    },
    /// This command exits 0.
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
    /// Appended to this file (created if missing) by the service itself.
    File(PathBuf),
    /// Captured by tend and appended to a file it rotates (and tees).
    Rotated(FileLog),
}

/// `{ file = .., max-size = .., max-files = .., tee = .. }`: a log file
/// written by tend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLog {
    pub path: PathBuf,
    /// Rotate before a line would make the file larger; `None`: never.
    pub max_size: Option<u64>,
    /// Rotated files kept: `path.1` (newest) to `path.N`.
    pub max_files: u32,
    /// Also write the lines to tend's own output, as `"log"` does.
    pub tee: bool,
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
            health: None,
            run_as: RunAs::default(),
            working_dir: None,
            env: Vec::new(),
            limits: BTreeMap::new(),
            resources: Resources::default(),
            stdout: Stdio::Log,
            stderr: Stdio::Log,
            log_buffer_lines: DEFAULT_LOG_BUFFER_LINES,
            service: ServiceConfig::default(),
        }
    }
}

/// The supervisor holds each unit whole; a reload restarts a service when
/// anything the runtime runs it with changed, except its cgroup limits,
/// which the runtime changes in place. Where `argv[0]` was found in
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
            health,
            run_as,
            working_dir,
            env,
            limits,
            // Changed in place by the runtime, without a restart.
            resources: _,
            stdout,
            stderr,
            log_buffer_lines: _,
            service,
        } = self;
        let ready_same = match (ready.as_deref(), new.ready.as_deref()) {
            (Some(Ready::Exec { argv: a, .. }), Some(Ready::Exec { argv: b, .. })) => a == b,
            (a, b) => a == b,
        };
        let health_same = match (health.as_deref(), new.health.as_deref()) {
            (Some(HealthCheck::Exec { argv: a, .. }), Some(HealthCheck::Exec { argv: b, .. })) => a == b,
            (a, b) => a == b,
        };
        *name == new.name
            && *argv == new.argv
            && *form == new.form
            && ready_same
            && health_same
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
