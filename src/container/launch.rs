//! The launcher of `tend boot`: takes the machine's name in the registry,
//! clones the child into its namespaces, writes its id maps, waits for it
//! to report its setup done (or the one error that stopped it), then stays
//! in the foreground turning SIGTERM/SIGINT into a graceful shutdown and
//! returns the container's exit code. Detached, it keeps the machine's own
//! log and tells the `tend boot --detach` that started it when PID 1 is
//! ready or why the boot failed (the `watch` module). The child leaves the
//! terminal's session, sets up the mounts, pivots, hides the host's paths
//! from its command line and runs `tend init`'s loop as PID 1.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;

use super::cgroups::MachineCgroups;
use super::options::{BootOptions, Net, Notify, NOTIFY_INSIDE, UNITS_INSIDE};
use super::watch::Watch;
use super::{apply, confine, namespaces, net, plan, userns};
use crate::registry;
use crate::runtime::own_log::LogFile;
use crate::runtime::{self, Reactor};
use crate::sys::fault::{Fault, Faulty};
use crate::sys::mount::Real;
use crate::sys::ns::{clone_into, clone_into_cgroup, loopback_up, Forked};
use crate::sys::process;
use crate::unit::{self, CheckEnv};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] registry::Error),
    #[error(transparent)]
    Namespaces(#[from] namespaces::Error),
    #[error(transparent)]
    Net(#[from] net::Error),
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
    #[error("cannot create the machine's socket {}", .path.display())]
    Socket { path: PathBuf, source: std::io::Error },
    #[error("cannot create the machine's log {}", .path.display())]
    MachineLog { path: PathBuf, source: std::io::Error },
    #[error("cannot watch the machine")]
    Watch(#[source] std::io::Error),
    #[error(transparent)]
    Cgroups(#[from] super::cgroups::Error),
    #[error("cannot bring up the loopback interface")]
    Loopback(#[source] std::io::Error),
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

/// Clones the container and sees it through; `up` is told "ok" once it
/// runs (detached: once its PID 1 reports ready), or why it did not.
fn launch(o: &BootOptions, up: &mut Option<OwnedFd>) -> Result<i32, Error> {
    // The id range, held until the machine ends.
    let (o, _claim) = userns::claim_for(o, &registry::dir())?;
    let o = &o;
    let (report_r, report_w) = pipe()?;
    let (go_r, go_w) = userns::channel()?;
    // The host-side control socket (`tend ctl -M NAME`), bound here on the
    // host's file system; the child inherits it and serves it after its
    // pivot_root, when that path is out of its reach.
    let dir = registry::dir();
    let path = registry::socket_path(&dir, &o.name);
    let machine = crate::runtime::control::server::listen(&path, None).map_err(|source| Error::Socket {
        path: path.clone(),
        source,
    })?;
    let mut o = o.clone();
    // Checked and addressed before anything starts; taken down on drop.
    let result = net::prepare(&o).map_err(Error::from).and_then(|mut network| {
        for line in userns::warnings(&o) {
            tracing::warn!("{line}");
        }
        net::dns::write(&o, network.address());
        Detached::create(&dir, &mut o).and_then(|detached| {
            let pipes = Pipes {
                report_r,
                report_w,
                go_r,
                go_w,
            };
            run_container(&o, up, pipes, machine, detached, &mut network)
        })
    });
    if result.is_err() {
        // Not started after all: the files just made are ours to remove
        // (once started, the registry entry removes them with itself).
        for file in [
            path,
            registry::log_path(&dir, &o.name),
            registry::notify_path(&dir, &o.name),
        ] {
            let _ = std::fs::remove_file(file);
        }
    }
    result
}

/// The launcher's pipes to the child: its setup report, and the go ahead.
struct Pipes {
    report_r: OwnedFd,
    report_w: OwnedFd,
    go_r: OwnedFd,
    go_w: OwnedFd,
}

/// What a detached machine has beside its socket: its own log, fed by a
/// pipe from PID 1's stdout and stderr, and the socket on which its PID 1
/// reports readiness (as to any manager: `NOTIFY_SOCKET`).
pub(super) struct Detached {
    pub(super) log: LogFile,
    /// PID 1's handle on its own log, for `tend ctl -M NAME logs`.
    reader: std::fs::File,
    pub(super) output_r: OwnedFd,
    output_w: OwnedFd,
    pub(super) notify: UnixDatagram,
}

impl Detached {
    /// For a detached boot only: makes the files (replacing stale ones of
    /// an earlier machine of the name) and points `o.notify` at the socket.
    fn create(dir: &Path, o: &mut BootOptions) -> Result<Option<Detached>, Error> {
        if !o.detach {
            return Ok(None);
        }
        let log_path = registry::log_path(dir, &o.name);
        let (log, reader) =
            LogFile::create(&log_path).map_err(|source| Error::MachineLog { path: log_path, source })?;
        let (output_r, output_w) = pipe()?;
        nix::fcntl::fcntl(&output_r, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(Error::Pipe)?;
        let notify_path = registry::notify_path(dir, &o.name);
        let _ = std::fs::remove_file(&notify_path);
        // Writable by all: PID 1 may be another user (its user namespace's
        // root); the directory (0700) keeps everyone else out on the host.
        let notify = UnixDatagram::bind(&notify_path)
            .and_then(|s| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&notify_path, std::fs::Permissions::from_mode(0o666))?;
                s.set_nonblocking(true).map(|()| s)
            })
            .map_err(|source| Error::Socket {
                path: notify_path.clone(),
                source,
            })?;
        o.notify = Notify::Path(notify_path);
        Ok(Some(Detached {
            log,
            reader,
            output_r,
            output_w,
            notify,
        }))
    }

    /// In the child: stdout and stderr into the pipe; the log's handle kept.
    fn into_child(self) -> std::fs::File {
        // Without them, PID 1 would write to /dev/null as before.
        let _ = nix::unistd::dup2_stdout(&self.output_w);
        let _ = nix::unistd::dup2_stderr(&self.output_w);
        self.reader
    }
}

/// The clone and what follows it, on both sides.
fn run_container(
    o: &BootOptions,
    up: &mut Option<OwnedFd>,
    pipes: Pipes,
    machine: std::os::unix::net::UnixListener,
    detached: Option<Detached>,
    network: &mut net::Network,
) -> Result<i32, Error> {
    let Pipes {
        report_r,
        report_w,
        go_r,
        go_w,
    } = pipes;
    // `--memory`, `--cpus`, `--pids` bound the machine and all it starts;
    // under --privileged, only the nodes of its /dev. Made first, so that
    // PID 1 starts in its v2 cgroup: moving it later would wait for an RCU
    // grace period (about 10 ms here).
    let token = format!("boot-{}-{}", o.name, std::process::id());
    let cgroups = MachineCgroups::make(o, &token, network.fault())?;
    // Nothing to write before the child may start its setup (no id maps
    // of its own): its first "go" waits in the socket, and the child runs
    // on from the clone without waiting to be woken.
    if !userns::maps_after_clone(o) {
        userns::go_on(&go_w)?;
    }
    // Decided here, once: after the clone the child may be root of a user
    // namespace of its own.
    let lo_by_launcher = loopback_by_launcher(o);
    let flags = namespaces::clone_flags(o);
    let cloned = match cgroups.v2_dir() {
        Some(dir) => clone_into_cgroup(flags, dir),
        None => clone_into(flags).map(|forked| (forked, false)),
    };
    let (child, in_v2) = match cloned.map_err(namespaces::Error::Clone)? {
        (Forked::Child, _) => {
            // The launcher's pipes and cgroups are not ours to keep.
            drop((report_r, go_w, up.take()));
            cgroups.close_in_child();
            let own_log = detached.map(Detached::into_child);
            let setup = Setup {
                go: go_r,
                lo_by_launcher,
            };
            return Ok(child_main(o, setup, report_w, machine, own_log));
        }
        (Forked::Parent { child }, in_v2) => (child, in_v2),
    };
    drop((go_r, report_w, machine));
    let started = start(
        o,
        Child {
            pid: child,
            cgroups,
            in_v2,
            lo_by_launcher,
        },
        go_w,
        report_r,
        network,
    );
    let started = started.and_then(|(reactor, reservation, cgroups)| {
        let watch = detached.map(|d| Watch::new(d, o, &reactor)).transpose()?;
        Ok((reactor, (reservation, cgroups), watch))
    });
    match started {
        Ok((reactor, reservation_and_cgroups, mut watch)) => {
            match &mut watch {
                Some(watch) => watch.up = up.take(),
                None => {
                    if let Some(fd) = up.take() {
                        write_all(fd, "ok");
                    }
                }
            }
            // The entry and the socket go when `reservation_and_cgroups`
            // drops, after; the machine's cgroups too.
            let code = wait(child, reactor, watch)?;
            let oom_kills = reservation_and_cgroups.1.oom_kills();
            if code == 128 + libc::SIGKILL && oom_kills > 0 {
                // Else the machine would end with 137 and not a word.
                let bound = o.resources.memory_max.map(crate::resources::show_size);
                let bound = bound.map_or_else(String::new, |b| format!(" (--memory {b})"));
                tracing::warn!("PID 1 was killed, after the kernel's OOM killer killed {oom_kills} of the machine's processes{bound}");
            }
            Ok(code)
        }
        Err(e) => {
            let _ = process::kill(child, libc::SIGKILL);
            let _ = process::wait_for(child, false);
            Err(e)
        }
    }
}

/// PID 1 as the launcher knows it: its host pid and its cgroups (it is in
/// their v2 one when `in_v2`).
struct Child {
    pid: i32,
    cgroups: MachineCgroups,
    in_v2: bool,
    /// Its loopback is the launcher's to bring up ([`loopback_by_launcher`]).
    lo_by_launcher: bool,
}

/// Whether the launcher brings up the machine's new loopback, while PID 1
/// mounts its root, rather than PID 1 after it (about 0.1 ms off the
/// boot): a root launcher, which may enter the machine's network
/// namespace. A network the launcher makes (veth, bridge) has it brought up
/// with the rest.
fn loopback_by_launcher(o: &BootOptions) -> bool {
    o.net.is_new() && !matches!(o.net, Net::Veth | Net::Bridge(_)) && nix::unistd::geteuid().is_root()
}

/// What the child needs from the launcher for its setup: the channel of
/// its "go"s, and whether its loopback is the launcher's to bring up.
struct Setup {
    go: OwnedFd,
    lo_by_launcher: bool,
}

/// The launcher's half of the start: id maps, cgroups, the network,
/// signals, the registry entry (once, with PID 1's pid), then the child's
/// report.
fn start(
    o: &BootOptions,
    child: Child,
    go: OwnedFd,
    report: OwnedFd,
    network: &mut net::Network,
) -> Result<(Reactor, registry::Reservation, MachineCgroups), Error> {
    let Child {
        pid: child,
        mut cgroups,
        in_v2,
        lo_by_launcher,
    } = child;
    // Let the child go first: the rest runs while it sets up (two CPUs).
    if userns::maps_after_clone(o) {
        namespaces::write_maps(child)?;
    }
    // The child mounts its root while its cgroups and network are made; it
    // waits for the second "go" before its first service starts, and runs
    // only tend's own setup until then.
    userns::let_go(o, &go)?;
    let prepared = cgroups
        .join(child, in_v2, network.fault())
        .map_err(Error::from)
        .and_then(|()| {
            let target = net_target(o, child);
            network.attach(&target)?;
            if lo_by_launcher {
                network
                    .fault()
                    .step()
                    .map_err(std::io::Error::from)
                    .and_then(|()| crate::sys::ns::open_ns_file(&target.netns))
                    .and_then(|ns| crate::sys::ns::loopback_up_in(&ns))
                    .map_err(Error::Loopback)?;
            }
            // A fault test: the child numbers its steps after ours.
            if let Some(steps) = network.fault_steps() {
                crate::sys::fault::tell(&go, steps).map_err(userns::Error::Go)?;
            }
            Ok(())
        });
    if let Err(e) = prepared {
        // A child whose setup failed meanwhile is gone (and cannot join a
        // cgroup): its report says why. Killed, not reaped (the caller
        // reaps it): its end of the report closes with it.
        let _ = process::kill(child, libc::SIGKILL);
        let message = read_all(report);
        return Err(if message.is_empty() { e } else { Error::Setup(message) });
    }
    // A child whose setup failed is gone: its report says why.
    let _ = userns::go_on(&go);
    drop(go);
    let signals = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGHUP];
    let reactor = Reactor::with_handlers(&signals).map_err(Error::Signals)?;
    let reservation = registry::reserve(&registry::dir(), &o.name, &o.rootfs, child, o.id_range);
    let message = read_all(report);
    let reservation = reservation?;
    if message.is_empty() {
        Ok((reactor, reservation, cgroups))
    } else {
        Err(Error::Setup(message))
    }
}

/// Until the container ends: SIGTERM, SIGINT and SIGQUIT become a SIGTERM
/// to its PID 1 (its graceful shutdown), SIGHUP is passed on (reload); a
/// detached machine's output and readiness are watched.
fn wait(child: i32, mut reactor: Reactor, mut watch: Option<Watch>) -> Result<i32, Error> {
    // Signals held until PID 1 catches them: PID 1 of a PID namespace drops
    // a signal it has no handler for, and its handlers come with its loop,
    // just after the setup it reported.
    let mut held: Vec<i32> = Vec::new();
    loop {
        if let Some(status) = process::wait_for(child, true).map_err(Error::Wait)? {
            if let Some(watch) = &mut watch {
                watch.ended(status.code());
            }
            return Ok(status.code());
        }
        // Only while a signal is held: a few milliseconds at boot.
        let retry = (!held.is_empty()).then(|| Instant::now() + Duration::from_millis(5));
        let wake = reactor.wait(retry).map_err(Error::Wait)?;
        if let Some(watch) = &mut watch {
            for token in &wake.ready {
                watch.ready(*token, child);
            }
        }
        held.extend(wake.signals.into_iter().filter_map(|signal| match signal {
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => Some(libc::SIGTERM),
            libc::SIGHUP => Some(libc::SIGHUP),
            _ => None,
        }));
        held.retain(|&signal| !deliver(child, signal));
    }
}

/// Sends `signal` to PID 1 once it takes it (a handler, or blocked for its
/// signalfd: either way it is not lost); false while it does not yet.
fn deliver(child: i32, signal: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap_or_default();
    if taken(&status, signal) == Some(false) {
        return false;
    }
    if let Err(e) = process::kill(child, signal) {
        tracing::warn!("cannot signal the container: {}", crate::sys::describe(&e));
    }
    true
}

/// Where the launcher finds the container's network and user namespaces:
/// the ones it holds for a root-booted machine (see [`userns`]; the child
/// enters them after "go"), else the child's own.
fn net_target(o: &BootOptions, child: i32) -> net::Target {
    let launcher = std::process::id();
    let held = |name: &str| {
        o.held
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, fd)| std::path::PathBuf::from(format!("/proc/{launcher}/fd/{fd}")))
    };
    let own = |name: &str| std::path::PathBuf::from(format!("/proc/{child}/ns/{name}"));
    net::Target {
        netns: held("net").unwrap_or_else(|| own("net")),
        userns: held("user").unwrap_or_else(|| own("user")),
    }
}

/// Whether `signal` is caught (`SigCgt`) or blocked (`SigBlk`, queued for
/// a signalfd) in a `/proc/PID/status` text: PID 1 of a PID namespace drops
/// any other signal from outside.
fn taken(status: &str, signal: i32) -> Option<bool> {
    let bit = u32::try_from(signal).ok()?.checked_sub(1)?;
    let has = |field: &str| -> Option<bool> {
        let mask = status.lines().find_map(|l| l.strip_prefix(field))?;
        let mask = u64::from_str_radix(mask.trim(), 16).ok()?;
        Some(mask.checked_shr(bit).is_some_and(|m| m & 1 == 1))
    };
    Some(has("SigCgt:")? || has("SigBlk:")?)
}

/// The child: PID 1 of the new namespaces. Reports its setup's outcome
/// through `report` (an error text, or nothing before closing it).
fn child_main(
    o: &BootOptions,
    setup_from: Setup,
    report: OwnedFd,
    machine: std::os::unix::net::UnixListener,
    own_log: Option<std::fs::File>,
) -> i32 {
    // Die with the launcher: nobody else would stop this machine.
    let _ = process::set_parent_death_signal(libc::SIGKILL);
    let Setup { go, lo_by_launcher } = setup_from;
    // Wait until the launcher has written our id maps: before that, we are
    // nobody in our user namespace and may mount nothing.
    if !userns::await_go(&go) {
        return 1;
    }
    leave_job_control(o);
    if let Err(e) = setup(o, &go, lo_by_launcher) {
        write_all(report, &crate::sys::chain(&e));
        return 1;
    }
    // The network and the cgroups the launcher made meanwhile are there.
    if !userns::await_go(&go) {
        return 1;
    }
    // A launcher killed before this process asked for its death signal
    // (a new task may first run after its parent has written the registry
    // entry and been killed) sent none: nobody would stop this machine.
    if !launcher_alive(&report) {
        return 1;
    }
    if o.privileged {
        // In its devices cgroup since the clone (or moved there during the
        // setup), but its cgroup namespace was made from the launcher's: a
        // new one, rooted there, keeps the host's cgroups (and the parent
        // holding the rules) out of sight.
        if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP) {
            tracing::warn!(
                "cannot root the cgroup namespace at the machine's cgroups: {}",
                e.desc()
            );
        }
    }
    drop((go, report));
    hide_host_paths(o);
    // PID 1 runs the host's tend binary: from inside, /proc/1/exe would
    // name it and open it (as runc's /proc/self/exe could be, CVE-2019-5736).
    // Entering the user namespace already cleared the flag (its credentials
    // changed); this keeps it so whatever the credentials do.
    if let Err(e) = process::set_not_dumpable() {
        tracing::warn!("cannot hide PID 1's /proc entries: {}", crate::sys::describe(&e));
    }
    let options = runtime::init::Options {
        // With `-- CMD` and no `--units`, UNITS_INSIDE does not exist: no units.
        units: o.units_inside().unwrap_or_else(|| UNITS_INSIDE.into()),
        command: o.command.clone(),
        cwd: Some(PathBuf::from("/")),
        shutdown_timeout: o.shutdown_timeout,
        on_failure: crate::supervisor::OnFailure::None,
        // Inside: reachable from the host with `tend ctl --pid PID`.
        socket: Some(crate::runtime::control::server::Config {
            path: crate::ctl::socket_path::DEFAULT_SOCKET.into(),
            group: None,
        }),
        machine_socket: Some(machine),
        own_log,
    };
    match runtime::init::run(options) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tend: {}", crate::sys::chain(&e));
            1
        }
    }
}

/// Whether the launcher still reads `report`, the child's end of their
/// pipe: once no reader is left, the write end polls as POLLERR.
fn launcher_alive(report: &OwnedFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(report.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => !fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLERR)),
        Err(_) => true,
    }
}

/// A machine's PID 1 leaves the launcher's session, so a terminal's Ctrl-C
/// reaches only the launcher, which relays it once: one graceful shutdown,
/// a second one forced. It stays only when its command will take the
/// terminal's foreground (`-- sh` on a terminal: Ctrl-C is for the shell).
fn leave_job_control(o: &BootOptions) {
    let foreground = nix::unistd::tcgetpgrp(std::io::stdin()).ok();
    if o.command.is_empty() || foreground != Some(nix::unistd::getpgrp()) {
        if let Err(e) = nix::unistd::setsid() {
            tracing::warn!("cannot leave the terminal's session: {}", e.desc());
        }
    }
}

/// After the pivot, PID 1's command line (a copy of its launcher's) would
/// name the host's paths of tend and of the rootfs: it reads `tend init`.
fn hide_host_paths(o: &BootOptions) {
    let mut args = vec!["tend", "init"];
    let command: Vec<String> = o.command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    if !command.is_empty() {
        args.push("--");
        args.extend(command.iter().map(String::as_str));
    }
    if let Err(e) = crate::sys::cmdline::rewrite(&args) {
        tracing::warn!("cannot rewrite PID 1's command line: {}", crate::sys::describe(&e));
    }
}

/// Everything between the clone and PID 1's loop, in order.
fn setup(o: &BootOptions, go: &OwnedFd, lo_by_launcher: bool) -> Result<(), SetupError> {
    userns::enter(o)?;
    // Read before `environment` clears the variables; inert unless a test
    // sets it (see `sys::fault`): then numbered after the launcher's.
    let mut fault = Fault::from_env();
    if fault.armed() {
        fault.steps = crate::sys::fault::told(go).map_err(userns::Error::Go)?;
    }
    let mut sys = Faulty {
        inner: &mut Real,
        fault: &mut fault,
    };
    apply::apply(&mut sys, &plan::plan(o))?;
    // A network the launcher makes (veth, bridge) has loopback brought up
    // with the rest, before the second "go": here it would wait on the
    // launcher's requests in the kernel. A root launcher brings up a lone
    // loopback too (see `loopback_by_launcher`).
    if o.net.is_new() && !matches!(o.net, Net::Veth | Net::Bridge(_)) && !lo_by_launcher {
        fault
            .step()
            .map_err(std::io::Error::from)
            .and_then(|()| loopback_up())
            .map_err(SetupError::Loopback)?;
    }
    if let Some(line) = fault.unreached() {
        eprintln!("tend: {line}");
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

/// Tells the waiting `tend boot --detach` "ok", or why not.
pub(super) fn tell(up: OwnedFd, message: &str) {
    write_all(up, message);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_signals_from_proc_status() {
        let status = "Name:\ttend\nSigBlk:\t0000000000000004\nSigIgn:\t0000000000001000\nSigCgt:\t0000000000004a02\n";
        assert_eq!(taken(status, libc::SIGINT), Some(true));
        assert_eq!(taken(status, libc::SIGTERM), Some(true));
        assert_eq!(
            taken(status, libc::SIGQUIT),
            Some(true),
            "blocked: queued for a signalfd"
        );
        assert_eq!(taken(status, libc::SIGHUP), Some(false));
        assert_eq!(taken("Name:\ttend\n", libc::SIGTERM), None);
        assert_eq!(taken(status, 0), None);
    }
}
