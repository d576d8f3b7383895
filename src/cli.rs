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
    /// Boot a system container from an OS tree, with tend as its PID 1.
    Boot(BootArgs),
    /// List the running machines.
    List,
}

/// `tend boot`: see `container::options` for what each option means.
#[derive(Debug, Args)]
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

    /// Run in a user namespace, as root inside (default when not root).
    #[arg(long)]
    pub userns: bool,

    /// Units from this host directory instead of ROOTFS/etc/tend/units.
    #[arg(long, value_name = "DIR")]
    pub units: Option<PathBuf>,

    /// Return once the container runs, leaving it in the background.
    #[arg(long)]
    pub detach: bool,

    /// How long stopping everything may take before what is left is killed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Run this as the main service instead of the rootfs's units.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
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

    /// The main service: when it exits, tend stops everything and exits with its code.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl Default for InitArgs {
    fn default() -> Self {
        InitArgs {
            units: DEFAULT_UNITS.into(),
            shutdown_timeout: Duration::from_secs(30),
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
