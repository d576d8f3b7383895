//! The command line: clap types, turned into validated settings by `main`.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, Parser};
use tracing_subscriber::filter::LevelFilter;

/// A declarative init and supervisor for namespaced environments.
///
/// `tend -- CMD [ARGS...]` runs CMD as the child of a PID 1 that reaps
/// zombies, forwards signals and exits with CMD's exit code (as tini does).
#[derive(Debug, Parser)]
#[command(name = "tend", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
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
