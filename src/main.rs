//! The edge: parse the command line, set up logging, run, and turn the
//! outcome into an exit code and at most one line on stderr.

use std::error::Error;

use clap::{CommandFactory, Parser};
use tend::cli::Cli;
use tend::entrypoint::Settings;
use tend::{logging, runtime, sys};
use tracing::info;
use tracing_subscriber::filter::LevelFilter;

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let cli = Cli::parse();
    logging::init(log_level(&cli, LevelFilter::WARN));
    if cli.command.is_empty() {
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "a command to run is required: tend [OPTIONS] -- CMD [ARGS...]",
            )
            .exit();
    }
    entrypoint(&cli)
}

/// `--log-level`, else `TEND_LOG`, else `default`; then `-v` raises it.
fn log_level(cli: &Cli, default: LevelFilter) -> LevelFilter {
    let from_env = || std::env::var("TEND_LOG").ok().and_then(|v| logging::parse_level(&v));
    let base = cli.log.log_level.or_else(from_env).unwrap_or(default);
    logging::raise(base, cli.log.verbose)
}

/// `tend -- CMD`: tini's job.
fn entrypoint(cli: &Cli) -> i32 {
    if std::process::id() != 1 {
        match sys::process::set_child_subreaper() {
            Ok(()) => info!("not running as PID 1: registered as child subreaper to reap orphans"),
            Err(e) => tracing::warn!(
                "not PID 1 and cannot become a child subreaper ({e}): orphans will not be reaped by tend"
            ),
        }
    }
    if let Some(sig) = cli.entry.parent_death_signal {
        if let Err(e) = sys::process::set_parent_death_signal(sig) {
            tracing::warn!("cannot set the parent death signal: {e}");
        }
    }
    // The command runs where tend was started; tend itself moves to / so it
    // never keeps a mount busy.
    let cwd = std::env::current_dir().ok();
    if let Err(e) = std::env::set_current_dir("/") {
        tracing::warn!("cannot change directory to /: {e}");
    }
    let settings = Settings {
        group: cli.entry.group,
        success_codes: cli.entry.success_exit.iter().map(|&c| i32::from(c)).collect(),
        grace: cli.entry.grace,
    };
    let extra: Vec<i32> = cli
        .entry
        .parent_death_signal
        .into_iter()
        .filter(|&s| s != libc::SIGKILL)
        .collect();
    match runtime::entrypoint::run(&cli.command, cwd.as_deref(), settings, &extra) {
        Ok(code) => code,
        Err(runtime::entrypoint::Error::Spawn(e)) => {
            eprintln!("tend: {e}");
            e.exit_code()
        }
        Err(e) => {
            eprintln!("tend: {}", chain(&e));
            1
        }
    }
}

/// An error and its causes, joined by `: `.
fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
