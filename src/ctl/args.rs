//! `tend ctl` and `tendctl` on the command line: the clap types the client
//! is driven by.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Command, FromArgMatches, Parser, Subcommand};

use super::protocol::WaitFor;

/// `tend ctl`: talk to a running `tend init` over its control socket.
#[derive(Debug, Args)]
pub struct CtlArgs {
    #[command(flatten)]
    pub to: Target,

    #[command(subcommand)]
    pub command: CtlCommand,
}

// Which tend to talk to, and how to print: the options of every command.
// (No doc comment: clap would take it as the about of `tend ctl`.)
#[derive(Debug, Args)]
pub struct Target {
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
}

// `tend ctl status [NAMES]...` (its about is the variant's doc comment).
#[derive(Debug, Args)]
pub struct StatusArgs {
    pub names: Vec<String>,
}

/// `[OPTIONS] status [NAMES]...` parsed by a command that has the status
/// command alone, built from the same definitions: building every ctl
/// command (each with its copy of the global options) was most of a
/// status client's start-up. `None` for any line that smaller command does
/// not take (other commands, help, version, every error): the caller then
/// parses it with the whole tree, so what it prints stays the same.
pub fn parse_status(bin: &'static str, args: impl Iterator<Item = OsString>) -> Option<CtlArgs> {
    // Other commands are not worth a failed parse (clap builds its error).
    let args: Vec<OsString> = args.collect();
    if !args.iter().any(|a| a == "status") {
        return None;
    }
    // No help flags to build: `--help` is then an error here, and the
    // whole tree prints the help.
    let status = StatusArgs::augment_args(Command::new("status")).disable_help_flag(true);
    let mut command = Target::augment_args(Command::new(bin))
        .disable_help_flag(true)
        .disable_help_subcommand(true)
        .subcommand(status);
    let matches = command.try_get_matches_from_mut(std::iter::once(OsString::from(bin)).chain(args));
    // The client exits soon: freeing the command and the matches is
    // wasted work.
    std::mem::forget(command);
    let matches = std::mem::ManuallyDrop::new(matches.ok()?);
    let (name, sub) = matches.subcommand()?;
    if name != "status" {
        return None;
    }
    Some(CtlArgs {
        to: Target::from_arg_matches(&matches).ok()?,
        command: CtlCommand::Status(StatusArgs::from_arg_matches(sub).ok()?),
    })
}

/// `[OPTIONS] status [NAMES]...` in its plain forms, read without clap:
/// building even the status command alone was a third of what is left of
/// a status client's instructions. It takes `--socket PATH` (or
/// `--socket=PATH`), `--json` and names, each option at most once and
/// anywhere after `ctl`, as clap does; anything else (another option, a
/// value clap would refuse or read otherwise, `--`, a repeated option, a
/// word that is not UTF-8) is `None`, and clap reads the line.
pub fn parse_status_plain(args: &[OsString]) -> Option<CtlArgs> {
    let (mut socket, mut json, mut status) = (None, false, false);
    let mut names = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let arg = arg.to_str()?;
        let value = match arg.split_once('=') {
            Some(("--socket", value)) => Some(value),
            Some(_) => return None,
            None if arg == "--socket" => Some(args.next()?.to_str()?),
            None => None,
        };
        match value {
            // clap takes no empty path, and no value that looks like an
            // option.
            Some(path) if socket.is_some() || path.is_empty() || path.starts_with('-') => return None,
            Some(path) => socket = Some(PathBuf::from(path)),
            None if arg == "--json" && !json => json = true,
            None if arg.starts_with('-') || arg.is_empty() => return None,
            None if status => names.push(arg.to_string()),
            None if arg == "status" => status = true,
            None => return None,
        }
    }
    status.then_some(CtlArgs {
        to: Target {
            socket,
            pid: None,
            machine: None,
            json,
        },
        command: CtlCommand::Status(StatusArgs { names }),
    })
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
    Status(StatusArgs),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn full(line: &[&str]) -> Option<String> {
        let argv = std::iter::once("tendctl").chain(line.iter().copied());
        TendCtl::try_parse_from(argv).ok().map(|t| format!("{:?}", t.ctl))
    }

    fn fast(line: &[&str]) -> Option<String> {
        parse_status("tendctl", line.iter().map(OsString::from)).map(|c| format!("{c:?}"))
    }

    #[test]
    fn the_status_parse_takes_what_the_whole_tree_takes_and_the_same() {
        let taken: &[&[&str]] = &[
            &["status"],
            &["status", "a", "b"],
            &["--socket", "/s", "status"],
            &["--socket=/s", "--json", "status", "a"],
            &["status", "--json", "a", "--socket", "/s"],
            &["--pid", "7", "status", "--", "-x"],
            &["-M", "web", "status", "help"],
            &["status", ""],
        ];
        for line in taken {
            assert!(fast(line).is_some(), "{line:?}");
            assert_eq!(fast(line), full(line), "{line:?}");
        }
    }

    fn plain(line: &[&str]) -> Option<String> {
        let args: Vec<OsString> = line.iter().map(OsString::from).collect();
        parse_status_plain(&args).map(|c| format!("{c:?}"))
    }

    #[test]
    fn the_plain_status_read_gives_what_clap_gives_or_leaves_it_to_clap() {
        let taken: &[&[&str]] = &[
            &["status"],
            &["status", "a", "b"],
            &["status", "status", "ping"],
            &["--socket", "/s", "status"],
            &["--socket=/s", "--json", "status", "a"],
            &["status", "--json", "a", "--socket", "/s"],
            &["status", "a", "--socket=/s=t", "b"],
            &["--json", "status", "help"],
        ];
        for line in taken {
            assert!(plain(line).is_some(), "{line:?}");
            assert_eq!(plain(line), full(line), "{line:?}");
        }
        let left: &[&[&str]] = &[
            &[],
            &["ping"],
            &["stat"],
            &["a", "status"],
            &["help", "status"],
            &["status", "--help"],
            &["status", "-h"],
            &["-V", "status"],
            &["status", "--bogus"],
            &["status", "--json=true"],
            &["status", "--"],
            &["status", "--", "-x"],
            &["status", "-"],
            &["status", ""],
            &["status", "a=b"],
            &["--pid", "7", "status"],
            &["-M", "web", "status"],
            &["--socket", "/s", "--pid", "1", "status"],
            &["--json", "--json", "status"],
            &["--socket", "/s", "status", "--socket", "/t"],
            &["--socket", "status"],
            &["status", "--socket"],
            &["status", "--socket", "--json"],
            &["status", "--socket="],
            &["status", "--socket", "-x"],
            &["exec", "--", "status"],
        ];
        for line in left {
            assert_eq!(plain(line), None, "{line:?}");
        }
        // Not UTF-8: clap's.
        use std::os::unix::ffi::OsStringExt;
        let odd = [OsString::from("status"), OsString::from_vec(vec![0xff])];
        assert!(parse_status_plain(&odd).is_none());
    }

    #[test]
    fn the_status_parse_leaves_everything_else_to_the_whole_tree() {
        let left: &[&[&str]] = &[
            &[],
            &["ping"],
            &["stat"],
            &["help", "status"],
            &["status", "--help"],
            &["-h"],
            &["--version"],
            &["-V", "status"],
            &["status", "--bogus"],
            &["--socket", "/s", "--pid", "1", "status"],
            &["--pid", "1", "-M", "x", "status"],
            &["--json", "--json", "status"],
            &["--socket", "status"],
            &["--pid", "abc", "status"],
            &["exec", "--", "status"],
        ];
        for line in left {
            assert_eq!(fast(line), None, "{line:?}");
        }
    }
}
