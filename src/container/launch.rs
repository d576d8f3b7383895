//! The launcher of `tend boot`: takes the machine's name in the registry,
//! clones the child into its namespaces, writes its id maps, waits for it
//! to report its setup done (or the one error that stopped it), then stays
//! in the foreground turning SIGTERM/SIGINT into a graceful shutdown and
//! returns the container's exit code. The child sets up the mounts, pivots
//! and runs `tend init`'s loop as PID 1.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use super::options::{BootOptions, Net, Notify, NOTIFY_INSIDE, UNITS_INSIDE};
use super::{apply, confine, namespaces, plan, registry, userns};
use crate::runtime::{self, Reactor};
use crate::sys::mount::Real;
use crate::sys::ns::{clone_into, loopback_up, Forked};
use crate::sys::process;
use crate::unit::{self, CheckEnv};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] registry::Error),
    #[error(transparent)]
    Namespaces(#[from] namespaces::Error),
    #[error(transparent)]
    UserNs(#[from] userns::Error),
    #[error("cannot create a pipe to the container")]
    Pipe(#[source] nix::errno::Errno),
    #[error("cannot set up signal handling")]
    Signals(#[source] std::io::Error),
    /// The child's own report, already one line.
    #[error("{0}")]
    Setup(String),
    #[error("the container ended before reporting its setup")]
    Vanished,
    #[error("cannot wait for the container")]
    Wait(#[source] std::io::Error),
    #[error("cannot detach")]
    Detach(#[source] std::io::Error),
    #[error("cannot create the machine's control socket {}", .path.display())]
    Socket { path: PathBuf, source: std::io::Error },
}

/// What can stop the child before PID 1's loop runs.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Mount(#[from] apply::Error),
    #[error("cannot bring up the loopback interface")]
    Loopback(#[source] std::io::Error),
    #[error("cannot load the units of {}: {errors}", .dir.display())]
    Units { dir: PathBuf, errors: String },
    #[error("cannot run the command: {0}")]
    Command(String),
    #[error(transparent)]
    Confine(#[from] confine::Error),
    #[error(transparent)]
    UserNs(#[from] userns::Error),
}

/// Boots the machine; returns its exit code (0 once detached). In the
/// cloned child this returns PID 1's exit code, for `main` to exit with.
pub fn boot(o: BootOptions) -> Result<i32, Error> {
    if !o.detach {
        registry::check_free(&registry::dir(), &o.name)?;
        return launch(&o, &mut None);
    }
    let (report_r, report_w) = pipe()?;
    match clone_into(0).map_err(Error::Detach)? {
        Forked::Parent { .. } => {
            drop(report_w);
            match read_all(report_r).as_str() {
                "ok" => Ok(0),
                "" => Err(Error::Vanished),
                message => Err(Error::Setup(message.to_string())),
            }
        }
        Forked::Child => {
            drop(report_r);
            let mut up = Some(report_w);
            detach_stdio().map_err(Error::Detach)?;
            let result = registry::check_free(&registry::dir(), &o.name)
                .map_err(Error::from)
                .and_then(|()| launch(&o, &mut up));
            match (result, up) {
                (Err(e), Some(fd)) => {
                    write_all(fd, &crate::sys::chain(&e));
                    Ok(1)
                }
                (result, _) => result,
            }
        }
    }
}

/// Clones the container and sees it through; `up` is told "ok" once it runs.
fn launch(o: &BootOptions, up: &mut Option<OwnedFd>) -> Result<i32, Error> {
    // The id range, held until the machine ends.
    let (o, _claim) = userns::claim_for(o, &registry::dir())?;
    let o = &o;
    let (report_r, report_w) = pipe()?;
    let (go_r, go_w) = userns::channel()?;
    // The host-side control socket (`tend ctl -M NAME`), bound here on the
    // host's file system; the child inherits it and serves it after its
    // pivot_root, when that path is out of its reach.
    let path = registry::socket_path(&registry::dir(), &o.name);
    let machine = crate::ctl::server::listen(&path, None).map_err(|source| Error::Socket {
        path: path.clone(),
        source,
    })?;
    let result = run_container(o, up, report_r, report_w, go_r, go_w, machine);
    if result.is_err() {
        // Not started after all: the socket just bound is ours to remove
        // (once started, the registry entry removes it with itself).
        let _ = std::fs::remove_file(&path);
    }
    result
}

/// The clone and what follows it, on both sides.
fn run_container(
    o: &BootOptions,
    up: &mut Option<OwnedFd>,
    report_r: OwnedFd,
    report_w: OwnedFd,
    go_r: OwnedFd,
    go_w: OwnedFd,
    machine: std::os::unix::net::UnixListener,
) -> Result<i32, Error> {
    let child = match clone_into(namespaces::clone_flags(o)).map_err(namespaces::Error::Clone)? {
        Forked::Child => {
            // The launcher's pipes are not ours to keep.
            drop((report_r, go_w, up.take()));
            return Ok(child_main(o, go_r, report_w, machine));
        }
        Forked::Parent { child } => child,
    };
    drop((go_r, report_w, machine));
    match start(o, child, go_w, report_r) {
        Ok((reactor, _reservation)) => {
            if let Some(fd) = up.take() {
                write_all(fd, "ok");
            }
            // The entry and the socket go when `_reservation` drops, after.
            wait(child, reactor)
        }
        Err(e) => {
            let _ = process::kill(child, libc::SIGKILL);
            let _ = process::wait_for(child, false);
            Err(e)
        }
    }
}

/// The launcher's half of the start: id maps, signals, the registry entry
/// (once, with PID 1's pid), then the child's report.
fn start(o: &BootOptions, child: i32, go: OwnedFd, report: OwnedFd) -> Result<(Reactor, registry::Reservation), Error> {
    // Let the child go first: the rest runs while it sets up (two CPUs).
    userns::let_go(o, child, go)?;
    let signals = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGHUP];
    let reactor = Reactor::new(&signals).map_err(Error::Signals)?;
    let reservation = registry::reserve(&registry::dir(), &o.name, &o.rootfs, child, o.id_range);
    let message = read_all(report);
    let reservation = reservation?;
    if message.is_empty() {
        Ok((reactor, reservation))
    } else {
        Err(Error::Setup(message))
    }
}

/// Until the container ends: SIGTERM, SIGINT and SIGQUIT become a SIGTERM
/// to its PID 1 (its graceful shutdown), SIGHUP is passed on (reload).
fn wait(child: i32, mut reactor: Reactor) -> Result<i32, Error> {
    loop {
        if let Some(status) = process::wait_for(child, true).map_err(Error::Wait)? {
            return Ok(status.code());
        }
        let wake = reactor.wait(None).map_err(Error::Wait)?;
        for signal in wake.signals {
            let forward = match signal {
                libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => libc::SIGTERM,
                libc::SIGHUP => libc::SIGHUP,
                _ => continue,
            };
            if let Err(e) = process::kill(child, forward) {
                tracing::warn!("cannot signal the container: {e}");
            }
        }
    }
}

/// The child: PID 1 of the new namespaces. Reports its setup's outcome
/// through `report` (an error text, or nothing before closing it).
fn child_main(o: &BootOptions, go: OwnedFd, report: OwnedFd, machine: std::os::unix::net::UnixListener) -> i32 {
    // Die with the launcher: nobody else would stop this machine.
    let _ = process::set_parent_death_signal(libc::SIGKILL);
    // Wait until the launcher has written our id maps: before that, we are
    // nobody in our user namespace and may mount nothing.
    if !userns::await_go(go) {
        return 1;
    }
    if let Err(e) = setup(o) {
        write_all(report, &crate::sys::chain(&e));
        return 1;
    }
    drop(report);
    let options = runtime::init::Options {
        // With `-- CMD` and no `--units`, UNITS_INSIDE does not exist: no units.
        units: o.units_inside().unwrap_or_else(|| UNITS_INSIDE.into()),
        command: o.command.clone(),
        cwd: Some(PathBuf::from("/")),
        shutdown_timeout: o.shutdown_timeout,
        // Inside: reachable from the host with `tend ctl --pid PID`.
        socket: Some(crate::ctl::server::Config {
            path: crate::ctl::server::DEFAULT_SOCKET.into(),
            group: None,
        }),
        machine_socket: Some(machine),
    };
    match runtime::init::run(options) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tend: {}", crate::sys::chain(&e));
            1
        }
    }
}

/// Everything between the clone and PID 1's loop, in order.
fn setup(o: &BootOptions) -> Result<(), SetupError> {
    userns::enter(o)?;
    apply::apply(&mut Real, &plan::plan(o))?;
    if o.net == Net::None {
        loopback_up().map_err(SetupError::Loopback)?;
    }
    userns::lock_in(o)?;
    environment(o);
    if let Some(dir) = o.units_inside() {
        check_units(&dir, o.command.is_empty())?;
    }
    if let Some(program) = o.command.first() {
        check_command(program)?;
    }
    confine::confine(o)?;
    Ok(())
}

/// PID 1 starts from a clean environment, as in systemd-nspawn: a PATH, the
/// terminal type, `container=tend`, and where to report readiness.
fn environment(o: &BootOptions) {
    let term = std::env::var_os("TERM");
    let keep_notify = matches!(o.notify, Notify::Abstract(_)) && o.net == Net::Host;
    let notify = std::env::var_os("NOTIFY_SOCKET");
    for (key, _) in std::env::vars_os() {
        std::env::remove_var(key);
    }
    std::env::set_var("PATH", unit::DEFAULT_PATH);
    std::env::set_var("container", "tend");
    if let Some(term) = term {
        std::env::set_var("TERM", term);
    }
    match &o.notify {
        Notify::Path(_) => std::env::set_var("NOTIFY_SOCKET", NOTIFY_INSIDE),
        Notify::Abstract(_) if keep_notify => {
            if let Some(n) = notify {
                std::env::set_var("NOTIFY_SOCKET", n);
            }
        }
        Notify::Abstract(name) => {
            tracing::warn!("NOTIFY_SOCKET @{name} is abstract: unreachable from a new network namespace")
        }
        Notify::None => {}
    }
}

/// Units that would not start are a setup error: every problem, one line.
fn check_units(dir: &Path, required: bool) -> Result<(), SetupError> {
    if !dir.is_dir() && !required {
        return Ok(());
    }
    let loaded = unit::load_dir(dir, &CheckEnv::for_root(Path::new("/")));
    if loaded.is_ok() && !loaded.units.is_empty() {
        return Ok(());
    }
    let all = loaded.all_errors();
    // The first few are enough to act on; the rest often follow from them.
    let mut errors: Vec<String> = all.iter().take(3).map(ToString::to_string).collect();
    if all.len() > 3 {
        errors.push(format!("and {} more (tend check)", all.len() - 3));
    }
    if errors.is_empty() {
        errors.push("no units, and no command given".into());
    }
    Err(SetupError::Units {
        dir: dir.to_path_buf(),
        errors: errors.join("; "),
    })
}

fn check_command(program: &OsString) -> Result<(), SetupError> {
    let argv0 = program.to_string_lossy();
    unit::find_program(
        Path::new("/"),
        &argv0,
        unit::DEFAULT_PATH,
        Some(Path::new("/")),
        "command",
    )
    .map(drop)
    .map_err(|p| SetupError::Command(p.to_string()))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(Error::Pipe)
}

fn read_all(fd: OwnedFd) -> String {
    let mut text = String::new();
    let _ = std::fs::File::from(fd).read_to_string(&mut text);
    text
}

fn write_all(fd: OwnedFd, text: &str) {
    let _ = std::fs::File::from(fd).write_all(text.as_bytes());
}

/// A detached launcher keeps no terminal: a new session, stdio on /dev/null.
fn detach_stdio() -> std::io::Result<()> {
    nix::unistd::setsid().map_err(std::io::Error::from)?;
    let null = crate::sys::spawn::dev_null().ok_or_else(|| std::io::Error::other("no /dev/null"))?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)?;
    Ok(())
}
