//! The command line: clap types, turned into validated settings by `main`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::filter::LevelFilter;

/// A declarative init and supervisor for namespaced environments.
///
/// `tend -- CMD [ARGS...]` runs CMD as the child of a PID 1 that reaps
/// zombies, forwards signals and exits with CMD's exit code (as tini does).
/// `tend init` supervises the services of TOML unit files.
#[derive(Debug, Parser)]
#[command(name = "tend", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub sub: Option<Sub>,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub entry: EntryArgs,

    /// The command to run, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log level: error, warn, info, debug, trace (default: warn; also `TEND_LOG`).
    #[arg(long, global = true, value_name = "LEVEL", value_parser = parse_level)]
    pub log_level: Option<LevelFilter>,

    /// More logging; repeat for more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// tini's flags, where they mean something here.
#[derive(Debug, Args)]
pub struct EntryArgs {
    /// Register as a child subreaper (automatic when not PID 1).
    #[arg(short = 's', long)]
    pub subreaper: bool,

    /// Signal tend receives when its parent dies (e.g. TERM, SIGKILL, 9).
    #[arg(short = 'p', long = "parent-death-signal", value_name = "SIG", value_parser = parse_signal)]
    pub parent_death_signal: Option<i32>,

    /// Forward signals to the child's whole process group.
    #[arg(short = 'g', long)]
    pub group: bool,

    /// Report this exit code of the child as 0 (repeatable).
    #[arg(short = 'e', long = "success-exit", value_name = "CODE")]
    pub success_exit: Vec<u8>,

    /// How long processes left behind by the child get between SIGTERM and SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Run as init: supervise the units of a directory, and CMD as the main service.
    Init(InitArgs),
    /// Validate unit files without running anything (exit 0 when all are valid).
    Check {
        /// The directory of unit files.
        #[arg(default_value = DEFAULT_UNITS)]
        dir: PathBuf,
    },
    /// Talk to a running tend init: status, start, stop, logs, exec...
    Ctl(CtlArgs),
    /// Boot a system container from an OS tree, with tend as its PID 1.
    Boot(BootArgs),
    /// List the running machines.
    List,
}

/// `tend boot`: see `container::options` for what each option means.
#[derive(Debug, Args)]
#[command(after_help = BOOT_MODEL)]
pub struct BootArgs {
    /// The directory holding the OS tree.
    #[arg(value_name = "ROOTFS")]
    pub rootfs: PathBuf,

    /// The machine's name (default: the rootfs directory's name).
    #[arg(long)]
    pub name: Option<String>,

    /// The hostname (default: ROOTFS/etc/hostname, else the name).
    #[arg(long)]
    pub hostname: Option<String>,

    /// Bind a host path: SRC:DST[:ro] (repeatable).
    #[arg(long, value_name = "SRC:DST[:ro]", value_parser = crate::container::options::parse_bind)]
    pub bind: Vec<crate::container::Bind>,

    /// Mount a tmpfs at DST inside (repeatable).
    #[arg(long, value_name = "DST")]
    pub tmpfs: Vec<PathBuf>,

    /// Mount the root read-only (/run, /tmp and binds stay writable).
    #[arg(long)]
    pub read_only: bool,

    /// Network: none (a new namespace with loopback up) or host.
    #[arg(long, value_name = "none|host", default_value = "none", value_parser = parse_net)]
    pub net: crate::container::Net,

    /// The user namespace's host ids: START:COUNT (default: 65536 ids
    /// picked from 524288–1879048191; rootless: your own id and /etc/subuid).
    #[arg(long, value_name = "START:COUNT", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub userns: Option<String>,

    /// Units from this host directory instead of ROOTFS/etc/tend/units.
    #[arg(long, value_name = "DIR")]
    pub units: Option<PathBuf>,

    /// Return once the container runs, leaving it in the background.
    #[arg(long)]
    pub detach: bool,

    /// How long stopping everything may take before what is left is killed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Keep these capabilities too (CAP_NAME,... or all; repeatable).
    #[arg(long, value_name = "CAP,...")]
    pub capability: Vec<String>,

    /// Drop these capabilities (CAP_NAME,... or all; repeatable).
    #[arg(long, value_name = "CAP,...")]
    pub drop_capability: Vec<String>,

    /// The default seccomp filter: on, or off (default: on, off with --privileged).
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub seccomp: Option<bool>,

    /// Container root is host root: every capability, no seccomp filter, no
    /// user namespace of its own.
    #[arg(long)]
    pub privileged: bool,

    /// Run this as the main service instead of the rootfs's units.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// `tend boot --help`: the security model in a few lines.
const BOOT_MODEL: &str = "\
Isolation: root inside is not root outside. Booted as root, the container's
ids 0-65535 are 65536 host ids of its own (picked, or --userns=START:COUNT),
the rootfs and binds idmapped so the files keep their owners on disk; its
mounts are locked; it keeps nspawn's capabilities (--capability,
--drop-capability) under a seccomp filter (--seccomp=off). Not isolated: the
kernel is shared. --privileged gives all of this up: container root is host root.";

fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, not {text:?}")),
    }
}

fn parse_net(text: &str) -> Result<crate::container::Net, String> {
    match text {
        "none" => Ok(crate::container::Net::None),
        "host" => Ok(crate::container::Net::Host),
        _ => Err(format!("unknown network {text:?} (none, host)")),
    }
}

pub const DEFAULT_UNITS: &str = "/etc/tend/units";

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory of unit files (`NAME.toml` defines service NAME).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_UNITS)]
    pub units: PathBuf,

    /// How long stopping everything may take before what is left is killed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// The control socket (`tend ctl`).
    #[arg(long, value_name = "PATH", default_value = crate::ctl::server::DEFAULT_SOCKET)]
    pub socket: PathBuf,

    /// Serve no control socket.
    #[arg(long, conflicts_with = "socket")]
    pub no_socket: bool,

    /// Members of this group (a name or a GID) may use the control socket too.
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// The main service: when it exits, tend stops everything and exits with its code.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl Default for InitArgs {
    fn default() -> Self {
        InitArgs {
            units: DEFAULT_UNITS.into(),
            shutdown_timeout: Duration::from_secs(30),
            socket: crate::ctl::server::DEFAULT_SOCKET.into(),
            no_socket: false,
            socket_group: None,
            command: Vec::new(),
        }
    }
}

fn parse_level(text: &str) -> Result<LevelFilter, String> {
    crate::logging::parse_level(text)
        .ok_or_else(|| format!("unknown log level {text:?} (error, warn, info, debug, trace)"))
}

pub fn parse_signal(text: &str) -> Result<i32, String> {
    crate::signal::parse(text).ok_or_else(|| format!("unknown signal {text:?}"))
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("bad duration {text:?}: {e}"))
}

/// `tend ctl`: talk to a running `tend init` over its control socket.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The control socket.
    #[arg(long, value_name = "PATH", conflicts_with = "pid", global = true)]
    pub socket: Option<PathBuf>,

    /// Reach the tend whose PID 1 has this pid here, through
    /// /proc/PID/root/run/tend/ctl.sock.
    #[arg(long, value_name = "PID", conflicts_with = "machine", global = true)]
    pub pid: Option<u32>,

    /// Reach the machine booted with `tend boot --name NAME`, through its
    /// host-side socket (see `tend list`).
    #[arg(short = 'M', long, value_name = "NAME", conflicts_with = "socket", global = true)]
    pub machine: Option<String>,

    /// Print the replies as JSON, one object per line.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: CtlCommand,
}

/// `tendctl ...`: the same as `tend ctl ...`.
#[derive(Debug, Parser)]
#[command(name = "tendctl", version)]
pub struct TendCtl {
    #[command(flatten)]
    pub ctl: CtlArgs,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// One line per service: name, state, pid, uptime, restarts, last exit.
    Status { names: Vec<String> },
    /// Start a service and wait until it is up (or failed).
    Start {
        name: String,
        #[arg(long)]
        no_block: bool,
    },
    /// Stop a service and wait until it is down.
    Stop {
        name: String,
        #[arg(long)]
        no_block: bool,
    },
    /// Stop a service if it runs, then start it; wait until it is up.
    Restart {
        name: String,
        #[arg(long)]
        no_block: bool,
    },
    /// Send a signal to everything a service started.
    Signal { name: String, signal: String },
    /// A service's captured output.
    Logs {
        name: String,
        /// The last N lines.
        #[arg(short = 'n', long, value_name = "N")]
        lines: Option<usize>,
        /// Then new lines as they come, until interrupted.
        #[arg(short, long)]
        follow: bool,
    },
    /// Read the unit files again (as SIGHUP).
    Reload,
    /// Stop everything and exit, gracefully.
    #[command(visible_aliases = ["poweroff", "halt"])]
    Shutdown {
        /// Return once shutdown began, not when tend is gone.
        #[arg(long)]
        no_block: bool,
    },
    /// Wait until every service named is in a state.
    Wait {
        #[arg(required = true)]
        names: Vec<String>,
        /// ready, running (or ready), stopped, failed.
        #[arg(long = "for", value_name = "STATE", default_value = "ready", value_parser = parse_wait_for)]
        state: crate::ctl::protocol::WaitFor,
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<Duration>,
    },
    /// Exit 0 when every enabled service is running or ready, 1 otherwise.
    Health,
    /// State changes as they happen, until interrupted.
    Events,
    /// tend's version and protocol version.
    Version,
    /// Check that tend answers.
    Ping,
    /// Run a command inside the environment, as a child of its PID 1.
    Exec {
        /// Give it a pseudo-terminal (for interactive programs).
        #[arg(short = 't', long)]
        tty: bool,
        #[arg(short, long, value_name = "USER")]
        user: Option<String>,
        /// KEY=VALUE (repeatable).
        #[arg(short, long, value_name = "KEY=VALUE")]
        env: Vec<String>,
        #[arg(short = 'w', long, value_name = "DIR")]
        cwd: Option<String>,
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
}

fn parse_wait_for(text: &str) -> Result<crate::ctl::protocol::WaitFor, String> {
    use crate::ctl::protocol::WaitFor;
    match text {
        "ready" => Ok(WaitFor::Ready),
        "running" => Ok(WaitFor::Running),
        "stopped" => Ok(WaitFor::Stopped),
        "failed" => Ok(WaitFor::Failed),
        _ => Err(format!("unknown state {text:?} (ready, running, stopped, failed)")),
    }
}
