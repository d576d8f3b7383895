//! `tend ctl` and `tendctl` on the command line: the clap types the client
//! is driven by.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::protocol::WaitFor;

/// `tend ctl`: talk to a running `tend init` over its control socket.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The control socket [default: as `tend init` chooses it: $TEND_SOCKET, else
    /// /run/tend/ctl.sock, else $XDG_RUNTIME_DIR/tend/ctl.sock or /tmp/tend-UID/ctl.sock].
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
    /// A service's captured output; without NAME, tend's own log (a
    /// detached machine's).
    Logs {
        name: Option<String>,
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
        /// A state (starting, running, ready, stopping, exited, failed,
        /// invalid, disabled; running includes ready), or up (running or
        /// ready), down (exited, failed, disabled, invalid), stopped (= down).
        #[arg(long = "for", value_name = "STATE", default_value = "ready", value_parser = parse_wait_for)]
        state: WaitFor,
        #[arg(long, value_name = "DURATION", value_parser = crate::unit::duration_arg)]
        timeout: Option<Duration>,
    },
    /// Exit 0 when every enabled service is running or ready (a oneshot:
    /// exited 0), 1 otherwise: starting, stopping, failed, invalid, or
    /// stopped by hand.
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

fn parse_wait_for(text: &str) -> Result<WaitFor, String> {
    text.parse()
}
