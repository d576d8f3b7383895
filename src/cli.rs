//! The command line: clap types, turned into validated settings by `main`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tracing::level_filters::LevelFilter;

/// A declarative init and supervisor for namespaced environments.
///
/// `tend -- CMD [ARGS...]` runs CMD as the child of a PID 1 that reaps
/// zombies, forwards signals and exits with CMD's exit code (as tini does;
/// the `--` may be left out unless CMD is named like a subcommand).
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

    /// The command to run (after `--`, or the first argument that is no option).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Default, Args)]
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
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::unit::duration_arg)]
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
    Ctl(crate::ctl::args::CtlArgs),
    /// Boot a system container from an OS tree, with tend as its PID 1.
    Boot(Box<BootArgs>),
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

    /// Bind a host path: SRC:DST[:ro|rw][,idmap|noidmap|rootidmap] (repeatable).
    #[arg(long, value_name = "SRC:DST[:OPTIONS]", value_parser = crate::container::options::parse_bind)]
    pub bind: Vec<crate::container::Bind>,

    /// Mount a tmpfs at DST inside (repeatable).
    #[arg(long, value_name = "DST")]
    pub tmpfs: Vec<PathBuf>,

    /// Mount the root read-only (/run, /tmp and binds stay writable).
    #[arg(long)]
    pub read_only: bool,

    /// Network: none (loopback only; the default, rootless too), host, veth
    /// (a veth pair to the host, NAT out), bridge[=NAME] (on bridge NAME,
    /// default tend0), pasta or slirp4netns (user mode, rootless too),
    /// ns:PATH (join a network namespace).
    #[arg(long, value_name = "MODE", default_value = "none", value_parser = crate::container::Net::parse)]
    pub net: crate::container::Net,

    /// Publish a port: [IP:]HOSTPORT:PORT[/tcp|/udp] (repeatable).
    #[arg(long, value_name = "[IP:]HOSTPORT:PORT", value_parser = crate::container::net::parse_publish)]
    pub publish: Vec<crate::container::net::Publish>,

    /// Where veth and bridge addresses come from (default 10.231.0.0/16).
    #[arg(long, value_name = "CIDR")]
    pub net_pool: Option<crate::container::net::Cidr>,

    /// The user namespace's host ids: START:COUNT (default: 65536 ids
    /// picked from 524288-1879048191; rootless: your own id and /etc/subuid).
    #[arg(long, value_name = "START:COUNT", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub userns: Option<String>,

    /// Where the rootfs cannot be idmapped: chown it into the id range
    /// instead (once: the next boot with the range skips it).
    #[arg(long)]
    pub userns_chown: bool,

    /// Units from this host directory instead of ROOTFS/etc/tend/units.
    #[arg(long, value_name = "DIR")]
    pub units: Option<PathBuf>,

    /// Return once the container runs, leaving it in the background.
    #[arg(long)]
    pub detach: bool,

    /// How long stopping everything may take before what is left is killed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::unit::duration_arg)]
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
    /// Bound the whole machine's memory: bytes, or like 512M, 1.5G.
    #[arg(long, value_name = "SIZE", value_parser = crate::resources::parse_size)]
    pub memory: Option<u64>,

    /// Bound the whole machine's CPU time, in CPUs (0.5, 2).
    #[arg(long, value_name = "N", value_parser = parse_cpus)]
    pub cpus: Option<u64>,

    /// Bound the whole machine's processes and threads.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub pids: Option<u64>,

    /// Run this as the main service instead of the rootfs's units.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// `tend boot --help`: the security model in a few lines.
const BOOT_MODEL: &str = "\
Isolation: root inside is not root outside. Booted as root, the container's
ids 0-65535 are 65536 host ids of its own (picked, or --userns=START:COUNT),
the rootfs and binds idmapped so the files keep their owners on disk (a
file system that cannot be: --userns-chown chowns the tree into the range,
once); its mounts are locked; it keeps nspawn's capabilities (--capability,
--drop-capability) under a seccomp filter (--seccomp=off). Not isolated: the
kernel is shared. --privileged gives all of this up: container root is host
root (only the nodes of /dev stay usable, through a devices cgroup).";

/// `--cpus`: a number of CPUs, as a quota per period.
fn parse_cpus(text: &str) -> Result<u64, String> {
    let cpus: f64 = text
        .trim()
        .parse()
        .map_err(|_| "expected a number of CPUs like 0.5 or 2".to_string())?;
    crate::resources::cpus_quota(cpus)
}

fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, not {text:?}")),
    }
}

pub const DEFAULT_UNITS: &str = "/etc/tend/units";

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory of unit files (`NAME.toml` defines service NAME).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_UNITS)]
    pub units: PathBuf,

    /// How long stopping everything may take before what is left is killed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::unit::duration_arg)]
    pub shutdown_timeout: Duration,

    /// The control socket (`tend ctl`) [default: $TEND_SOCKET, else
    /// /run/tend/ctl.sock, else $XDG_RUNTIME_DIR/tend/ctl.sock or /tmp/tend-UID/ctl.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Serve no control socket.
    #[arg(long, conflicts_with = "socket")]
    pub no_socket: bool,

    /// Members of this group (a name or a GID) may use the control socket too.
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// What a unit that sets no `on-failure` does when it fails for good:
    /// none, or shutdown (stop everything and exit with its code).
    #[arg(long, value_name = "WHAT", default_value = "none", value_parser = parse_on_failure)]
    pub on_failure: crate::supervisor::OnFailure,

    /// The main service: when it exits, tend stops everything and exits with its code.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl Default for InitArgs {
    fn default() -> Self {
        InitArgs {
            units: DEFAULT_UNITS.into(),
            shutdown_timeout: Duration::from_secs(30),
            socket: None,
            no_socket: false,
            socket_group: None,
            on_failure: crate::supervisor::OnFailure::None,
            command: Vec::new(),
        }
    }
}

fn parse_on_failure(text: &str) -> Result<crate::supervisor::OnFailure, String> {
    match text {
        "none" => Ok(crate::supervisor::OnFailure::None),
        "shutdown" => Ok(crate::supervisor::OnFailure::Shutdown),
        _ => Err(format!("unknown on-failure {text:?} (none, shutdown)")),
    }
}

fn parse_level(text: &str) -> Result<LevelFilter, String> {
    crate::logging::parse_level(text)
        .ok_or_else(|| format!("unknown log level {text:?} (error, warn, info, debug, trace)"))
}

pub fn parse_signal(text: &str) -> Result<i32, String> {
    crate::signal::parse(text).ok_or_else(|| format!("unknown signal {text:?}"))
}

/// tini's command line: `tend [OPTIONS] CMD [ARGS...]` without `--`.
/// Returns `argv` with `--` inserted before its first argument that is
/// neither an option, an option's value nor a subcommand; a program named
/// like a subcommand (`init`, `check`, `ctl`, `boot`, `list`, `help`) still
/// needs `--`. Options are left for clap to judge.
pub fn with_separator(mut argv: Vec<OsString>) -> Vec<OsString> {
    use clap::CommandFactory;
    let cli = Cli::command();
    let mut i = 1;
    while let Some(arg) = argv.get(i) {
        // Not UTF-8: no option or subcommand of ours, so a command.
        let Some(arg) = arg.to_str() else { break };
        if arg == "--" {
            return argv;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let takes_value = cli
                .get_arguments()
                .any(|a| a.get_long() == Some(long) && takes_value(a));
            i += usize::from(takes_value);
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            // A cluster (`-sg`, `-e3`, `-vvv`): a value-taking flag ends
            // it, and takes the next argument when it comes last.
            let valued = |c: char| cli.get_arguments().any(|a| a.get_short() == Some(c) && takes_value(a));
            if let Some(at) = shorts.char_indices().find(|&(_, c)| valued(c)).map(|(at, _)| at) {
                i += usize::from(at + 1 == shorts.len());
            }
        } else {
            let sub = |s: &clap::Command| s.get_name() == arg || s.get_all_aliases().any(|a| a == arg);
            if arg == "help" || cli.get_subcommands().any(sub) {
                return argv;
            }
            break;
        }
        i += 1;
    }
    if i < argv.len() {
        argv.insert(i, "--".into());
    }
    argv
}

fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_action().takes_values()
}

/// `TINI_VERBOSITY` as tini reads it: 0 silent, 1 fatal errors, 2 warnings,
/// 3 information, 4 and up debugging.
pub fn tini_verbosity(text: &str) -> Option<LevelFilter> {
    Some(match text.trim().parse::<u32>().ok()? {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sep(args: &[&str]) -> Vec<String> {
        let argv = std::iter::once("tend")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        with_separator(argv)
            .into_iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_first_argument_that_is_no_option_is_the_command() {
        assert_eq!(sep(&["sh", "-c", "exit 3"]), ["--", "sh", "-c", "exit 3"]);
        assert_eq!(sep(&["-s", "-g", "sh"]), ["-s", "-g", "--", "sh"]);
        assert_eq!(sep(&["-sg", "-e", "3", "sh"]), ["-sg", "-e", "3", "--", "sh"]);
        assert_eq!(sep(&["-e3", "-p", "TERM", "sh"]), ["-e3", "-p", "TERM", "--", "sh"]);
        assert_eq!(sep(&["-vp", "TERM", "sh"]), ["-vp", "TERM", "--", "sh"]);
        assert_eq!(
            sep(&["--grace", "1s", "--log-level=info", "sh"]),
            ["--grace", "1s", "--log-level=info", "--", "sh"]
        );
        assert_eq!(
            sep(&["-v", "/bin/true", "--", "x"]),
            ["-v", "--", "/bin/true", "--", "x"]
        );
    }

    #[test]
    fn subcommands_separators_and_options_alone_are_left_as_they_are() {
        for args in [
            &["init", "--", "sh"][..],
            &["-v", "ctl", "status"],
            &["check", "/x"],
            &["boot", "/r"],
            &["list"],
            &["help"],
            &["--", "sh"],
            &["-s", "--", "init"],
            &["-v"],
            &["--bogus"],
            &[],
        ] {
            assert_eq!(sep(args), args, "{args:?}");
        }
    }

    #[test]
    fn tini_verbosity_levels() {
        assert_eq!(tini_verbosity("0"), Some(LevelFilter::OFF));
        assert_eq!(tini_verbosity("1"), Some(LevelFilter::ERROR));
        assert_eq!(tini_verbosity("3"), Some(LevelFilter::INFO));
        assert_eq!(tini_verbosity("9"), Some(LevelFilter::TRACE));
        assert_eq!(tini_verbosity("loud"), None);
    }
}
