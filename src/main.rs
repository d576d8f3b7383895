//! The edge: parse the command line, set up logging, run, and turn the
//! outcome into an exit code and at most one line on stderr.
// The library's rules hold for the binary too (it is its own crate).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(not(test), no_main)]

use clap::{CommandFactory, Parser};
use tend::cli::{Cli, InitArgs, Sub};
use tend::entrypoint::Settings;
use tend::{logging, runtime, sys};
use tracing::info;
use tracing::level_filters::LevelFilter;

// tend's own C `main`, not Rust's runtime start-up: that start-up reads the
// main thread's stack bounds with pthread_getattr_np, which links glibc's
// scanf and float parsing (about 100 KiB) into the static binary. What tend
// needs of that start-up is in `sys::process::startup`; the arguments and
// the environment std still reads itself (glibc hands them to std's
// initialiser), and `process::exit` flushes stdout as a return from Rust's
// `main` would.
// (Under `cargo test` the harness has its own `main`; this one is then a
// plain function.)
#[cfg_attr(not(test), no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    sys::process::startup();
    std::process::exit(run());
}

// glibc's `assert` (in its own start-up code, malloc, ...) calls this. The
// static binary links tend's version instead of glibc's, which pulls in
// wide-character printf and gettext; the line printed is the same.
#[cfg(all(not(test), target_feature = "crt-static", target_env = "gnu"))]
#[no_mangle]
unsafe extern "C" fn __assert_fail(
    assertion: *const libc::c_char,
    file: *const libc::c_char,
    line: libc::c_uint,
    function: *const libc::c_char,
) -> ! {
    // SAFETY: glibc passes NUL-terminated strings (or a null function).
    unsafe { sys::process::assertion_failed(assertion, file, line, function) }
}

fn run() -> i32 {
    // Installed as `tendctl`, tend is its control client.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if std::path::Path::new(&argv0).file_name().is_some_and(|n| n == "tendctl") {
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        let fast = tend::ctl::args::parse_status_plain(&args)
            .or_else(|| tend::ctl::args::parse_status("tendctl", args.into_iter()));
        return tend::ctl::command::run(&fast.unwrap_or_else(|| tend::ctl::args::TendCtl::parse().ctl));
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = ctl_fast(&args).or_else(|| boot_fast(&args)) {
        return code;
    }
    let cli = match Cli::try_parse_from(tend::cli::with_separator(args.clone())) {
        Ok(cli) if init_args_ignored(&argv0, &cli) => return init_ignoring(&args[1..]),
        Ok(cli) => cli,
        Err(e) if booted_as_init(&argv0) && e.use_stderr() => return init_ignoring(&args[1..]),
        Err(e) => e.exit(),
    };
    match &cli.sub {
        Some(Sub::Ctl(args)) => tend::ctl::command::run(args),
        Some(Sub::Init(args)) => {
            logging::init(log_level(&cli.log, LevelFilter::INFO));
            init(args)
        }
        Some(Sub::Check { dir }) => {
            logging::init(log_level(&cli.log, LevelFilter::WARN));
            check(dir)
        }
        Some(Sub::Boot(args)) => boot_main(args, &cli.log),
        Some(Sub::List) => list(),
        // Started bare as PID 1 (by a kernel or a runtime): init with defaults.
        None if cli.command.is_empty() && std::process::id() == 1 => {
            logging::init(log_level(&cli.log, LevelFilter::INFO));
            init(&InitArgs::default())
        }
        None if cli.command.is_empty() => Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "a command to run is required: tend [OPTIONS] -- CMD [ARGS...], or tend init",
            )
            .exit(),
        None => {
            let tini = std::env::var("TINI_VERBOSITY")
                .ok()
                .and_then(|v| tend::cli::tini_verbosity(&v));
            logging::init(log_level(&cli.log, tini.unwrap_or(LevelFilter::WARN)));
            entrypoint(&cli)
        }
    }
}

/// `tend ctl ...` parsed by the ctl command alone: building tend's whole
/// command line (every subcommand, twice with `with_separator`) and taking
/// it apart again was most of a short client's start-up. What it does not
/// take (help, errors, tend's global flags) goes the usual way, so
/// messages stay the same.
fn ctl_fast(args: &[std::ffi::OsString]) -> Option<i32> {
    use clap::FromArgMatches;
    if args.get(1).map_or(true, |arg| arg != "ctl") {
        return None;
    }
    let ctl = tend::ctl::args::parse_status_plain(args.get(2..).unwrap_or_default())
        .or_else(|| tend::ctl::args::parse_status("tend ctl", args.iter().skip(2).cloned()));
    if let Some(ctl) = ctl {
        return Some(tend::ctl::command::run(&ctl));
    }
    let mut command = tend::ctl::args::TendCtl::command();
    let argv = std::iter::once("tend ctl".into()).chain(args.iter().skip(2).cloned());
    let matches = command.try_get_matches_from_mut(argv).ok()?;
    let ctl = tend::ctl::args::TendCtl::from_arg_matches(&matches).ok()?;
    // The client exits soon: freeing the command is wasted work.
    std::mem::forget(command);
    Some(tend::ctl::command::run(&ctl.ctl))
}

/// `tend boot ...` parsed by the boot command alone, as [`ctl_fast`] does
/// for `ctl`: tend's whole command line, built twice, was about 3% of a
/// `--privileged` boot of `/bin/true`. Help, errors and tend's global flags
/// after `boot` go the usual way, so messages stay the same.
fn boot_fast(args: &[std::ffi::OsString]) -> Option<i32> {
    use clap::{Args, FromArgMatches};
    if args.get(1).map_or(true, |arg| arg != "boot") {
        return None;
    }
    let mut command = tend::cli::BootArgs::augment_args(clap::Command::new("tend boot"));
    let argv = std::iter::once("tend boot".into()).chain(args.iter().skip(2).cloned());
    let matches = command.try_get_matches_from_mut(argv).ok()?;
    let boot = tend::cli::BootArgs::from_arg_matches(&matches).ok()?;
    drop(command);
    Some(boot_main(&boot, &tend::cli::LogArgs::default()))
}

/// `tend boot`, its command line read.
fn boot_main(args: &tend::cli::BootArgs, log: &tend::cli::LogArgs) -> i32 {
    // Nothing the caller left open reaches the container.
    sys::process::close_inherited();
    // A detached machine's log is a file of its own: worth its lines.
    let level = if args.detach {
        LevelFilter::INFO
    } else {
        LevelFilter::WARN
    };
    // Its journal lines (PID 1's too) name the machine.
    let name = args.name.clone().unwrap_or_else(|| {
        let rootfs = std::fs::canonicalize(&args.rootfs).unwrap_or_else(|_| args.rootfs.clone());
        tend::container::options::default_name(&rootfs)
    });
    logging::init_for(log_level(log, level), Some(&name));
    boot(args)
}

/// Exec'd as `init` (by a kernel, or `systemd-nspawn -b`) as PID 1: the
/// arguments may be meant for another init (`single`, `emergency`, `-b`).
fn booted_as_init(argv0: &std::ffi::OsStr) -> bool {
    std::process::id() == 1 && std::path::Path::new(argv0).file_name().is_some_and(|n| n == "init")
}

/// Booted as init with a "command" that is no program to be found: those
/// are arguments for an init, not a command for tini's mode.
fn init_args_ignored(argv0: &std::ffi::OsStr, cli: &Cli) -> bool {
    let Some(program) = cli.command.first() else {
        return false;
    };
    if cli.sub.is_some() || !booted_as_init(argv0) {
        return false;
    }
    let path = tend::unit::inherited_path();
    let root = std::path::Path::new("/");
    let program = program.to_string_lossy();
    tend::unit::find_program(root, &program, &path, None, "command").is_err()
}

/// `tend init` with the defaults, after one line naming what it ignores.
fn init_ignoring(args: &[std::ffi::OsString]) -> i32 {
    logging::init(LevelFilter::INFO);
    let shown: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    tracing::warn!("booting as init; ignoring the arguments {shown:?}");
    init(&InitArgs::default())
}

/// `tend check [DIR]`: every problem on its own line, then a summary.
fn check(dir: &std::path::Path) -> i32 {
    let env = tend::unit::CheckEnv::for_root(std::path::Path::new("/"));
    let (report, ok) = tend::unit::check(dir, &env);
    print!("{report}");
    if ok {
        0
    } else {
        1
    }
}

/// `tend boot ROOTFS`: a system container, tend as its PID 1.
fn boot(args: &tend::cli::BootArgs) -> i32 {
    use tend::container::{launch, options};
    let request = options::Request {
        rootfs: args.rootfs.clone(),
        name: args.name.clone(),
        hostname: args.hostname.clone(),
        binds: args.bind.clone(),
        tmpfs: args.tmpfs.clone(),
        read_only: args.read_only,
        net: args.net.clone(),
        publish: args.publish.clone(),
        net_pool: args.net_pool,
        userns: args.userns.is_some(),
        userns_range: args.userns.clone().filter(|r| !r.is_empty()),
        userns_chown: args.userns_chown,
        units: args.units.clone(),
        detach: args.detach,
        shutdown_timeout: args.shutdown_timeout,
        command: args.command.clone(),
        capability: args.capability.clone(),
        drop_capability: args.drop_capability.clone(),
        privileged: args.privileged,
        seccomp: args.seccomp,
        resources: tend::unit::Resources {
            memory_max: args.memory,
            cpu_quota: args.cpus,
            pids_max: args.pids,
            ..Default::default()
        },
    };
    let tty = sys::pty::ttyname(std::io::stdin());
    let result = options::resolve(request, nix::unistd::geteuid().is_root(), tty)
        .map_err(|e| sys::chain(&e))
        .and_then(|o| launch::boot(o).map_err(|e| sys::chain(&e)));
    result.unwrap_or_else(|e| {
        eprintln!("tend: {e}");
        1
    })
}

/// `tend list`: the running machines.
fn list() -> i32 {
    use tend::registry;
    let dir = registry::dir();
    let mut entries = registry::list(&dir);
    // Addresses live in the network's leases, beside the entries.
    for entry in &mut entries {
        entry.address = tend::container::net::lease::address(&dir, &entry.name);
    }
    let usage: Vec<registry::Usage> = entries
        .iter()
        .map(|e| tend::sys::cgroup::machine_usage(e.pid).map(|u| (u.memory, u.tasks)))
        .collect();
    print!("{}", registry::table(&entries, registry::unix_now(), &usage));
    0
}

/// `tend init`: supervise the units.
fn init(args: &InitArgs) -> i32 {
    // Before leaving the working directory: `--units units` is relative to it.
    let units = match units_dir(&args.units) {
        Ok(units) => units,
        Err(e) => {
            eprintln!("tend: {e}");
            return 1;
        }
    };
    become_reaper();
    raise_nofile_limit();
    let cwd = leave_cwd();
    let socket = match socket_config(args) {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("tend: {e}");
            return 2;
        }
    };
    let options = runtime::init::Options {
        units,
        command: args.command.clone(),
        cwd,
        shutdown_timeout: args.shutdown_timeout,
        on_failure: args.on_failure,
        socket,
        machine_socket: None,
        own_log: None,
    };
    match runtime::init::run(options) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tend: {}", sys::chain(&e));
            1
        }
    }
}

/// The unit directory as an absolute path; one given with `--units` must
/// be a directory (only the default may be absent).
fn units_dir(units: &std::path::Path) -> Result<std::path::PathBuf, String> {
    let absolute = std::path::absolute(units).map_err(|e| format!("--units {}: {e}", units.display()))?;
    if absolute.is_dir() || units == std::path::Path::new(tend::cli::DEFAULT_UNITS) {
        return Ok(absolute);
    }
    match absolute.exists() {
        true => Err(format!("--units {}: not a directory", units.display())),
        false => Err(format!("--units {}: no such directory", units.display())),
    }
}

/// `--socket`, `--no-socket`, `--socket-group` (a name from `/etc/group`, or a GID).
fn socket_config(args: &InitArgs) -> Result<Option<tend::runtime::control::server::Config>, String> {
    if args.no_socket {
        return Ok(None);
    }
    let group = match &args.socket_group {
        None => None,
        Some(text) => {
            let users = tend::unit::read_users(std::path::Path::new("/"));
            Some(users.group(tend::unit::Id::Name(text)).map_err(|e| e.to_string())?)
        }
    };
    // Without --socket: the place `tend ctl` looks for it too.
    let path = match args
        .socket
        .clone()
        .map_or_else(|| tend::ctl::socket_path::resolve(true), Ok)
    {
        Ok(path) => path,
        Err(e) => {
            tracing::warn!("{}; running without a control socket", sys::chain(&e));
            return Ok(None);
        }
    };
    Ok(Some(tend::runtime::control::server::Config { path, group }))
}

/// Orphans must come to us: PID 1 gets them anyway, otherwise we ask.
fn become_reaper() {
    if std::process::id() == 1 {
        return;
    }
    match sys::process::set_child_subreaper() {
        Ok(()) => info!("not running as PID 1: registered as child subreaper to reap orphans"),
        Err(e) => {
            tracing::warn!("not PID 1 and cannot become a child subreaper ({e}): orphans will not be reaped by tend")
        }
    }
}

/// More descriptors for PID 1; its children get the original soft limit.
fn raise_nofile_limit() {
    if let Err(e) = sys::spawn::raise_nofile_limit() {
        tracing::warn!("cannot raise the open files limit: {}", sys::describe(&e));
    }
}

/// Moves tend to / so it never keeps a mount busy; returns where it was, for
/// the command it runs.
fn leave_cwd() -> Option<std::path::PathBuf> {
    let cwd = std::env::current_dir().ok();
    if let Err(e) = std::env::set_current_dir("/") {
        tracing::warn!("cannot change directory to /: {e}");
    }
    cwd
}

/// `--log-level`, else `TEND_LOG`, else `default`; then `-v` raises it.
fn log_level(log: &tend::cli::LogArgs, default: LevelFilter) -> LevelFilter {
    let from_env = || std::env::var("TEND_LOG").ok().and_then(|v| logging::parse_level(&v));
    let base = log.log_level.or_else(from_env).unwrap_or(default);
    logging::raise(base, log.verbose)
}

/// `tend -- CMD`: tini's job.
fn entrypoint(cli: &Cli) -> i32 {
    become_reaper();
    raise_nofile_limit();
    if let Some(sig) = cli.entry.parent_death_signal {
        if let Err(e) = sys::process::set_parent_death_signal(sig) {
            tracing::warn!("cannot set the parent death signal: {e}");
        }
    }
    let cwd = leave_cwd();
    let settings = Settings {
        // tini's environment means what its flags mean (`-s` changes
        // nothing here: tend is a subreaper whenever it is not PID 1).
        group: cli.entry.group || std::env::var_os("TINI_KILL_PROCESS_GROUP").is_some(),
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
            eprintln!("tend: {}", sys::chain(&e));
            1
        }
    }
}
