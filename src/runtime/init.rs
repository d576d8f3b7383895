//! The event loop of `tend init`: load the units, hand them to the
//! supervisor, and carry out what it decides, feeding back what happens:
//! signals, reaped processes, readiness, deadlines.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info, warn};

use super::capture::Ring;
use super::control::{self, server::Server, task::Host};
use super::services::{Services, MAIN};
use super::{notify, Reactor};
use crate::supervisor::{Action, Change, Event, Health, ServiceStatus, Supervisor, SupervisorError};
use crate::sys::process;
use crate::unit::{self, CheckEnv, Unit};

/// What `tend init` was asked to run.
#[derive(Debug)]
pub struct Options {
    pub units: PathBuf,
    /// `-- CMD`: run as the main service beside the units.
    pub command: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    pub shutdown_timeout: Duration,
    /// `on-failure` of the units that set none.
    pub on_failure: crate::supervisor::OnFailure,
    /// The control socket; `None` serves none.
    pub socket: Option<control::server::Config>,
    /// A socket bound by `tend boot` on the host before the pivot, served
    /// beside `socket`.
    pub machine_socket: Option<std::os::unix::net::UnixListener>,
    /// A detached machine's own log, kept by its launcher (read-only).
    pub own_log: Option<std::fs::File>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot set up the event loop")]
    Reactor(#[source] std::io::Error),
    #[error("event loop failed")]
    Wait(#[source] std::io::Error),
}

/// The loop's state: the pure supervisor and the services' IO.
struct Init {
    options: Options,
    /// The one owner of every unit's definition.
    supervisor: Supervisor<Unit>,
    services: Services,
    reactor: Reactor,
    /// What we owe our own manager at `$NOTIFY_SOCKET`, if we were given one.
    manager: Option<notify::Upward>,
    /// The supervisor's changes drained this round, for the control server.
    changes: Vec<Change>,
    /// Changes drained in this turn of the loop (kept for the control
    /// server or not).
    drained: usize,
    /// The control socket's server; taken out while it runs (it needs `&mut Init`).
    ctl: Option<Server>,
    /// The wall clock, as the supervisor's schedules read it.
    clock: WallClock,
    /// A SIGCHLD's named child was reaped alone: the others are still to
    /// be reaped, after this turn's actions.
    reap_owed: bool,
    /// Exits and changes taken but not yet logged (see `tell`).
    untold: Vec<Untold>,
}

/// A line of the log, kept as data until it is told.
enum Untold {
    Exit {
        name: String,
        pid: i32,
        status: crate::sys::ExitStatus,
    },
    Change(Change),
}

/// The system's wall clock; for tests, one that starts at the Unix time
/// in `$TEND_TEST_WALL_CLOCK` and then runs with the monotonic clock, so a
/// test can put a scheduled run a second away.
enum WallClock {
    System,
    Test { start: Instant, wall: SystemTime },
}

impl WallClock {
    const TEST_VARIABLE: &'static str = "TEND_TEST_WALL_CLOCK";

    /// Reads (and removes, so services do not inherit it) the test variable.
    fn from_env(now: Instant) -> WallClock {
        let secs = std::env::var(Self::TEST_VARIABLE)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok());
        std::env::remove_var(Self::TEST_VARIABLE);
        match secs.and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s))) {
            Some(wall) => WallClock::Test { start: now, wall },
            None => WallClock::System,
        }
    }

    fn at(&self, now: Instant) -> SystemTime {
        match self {
            WallClock::System => SystemTime::now(),
            WallClock::Test { start, wall } => {
                let later = wall.checked_add(now.saturating_duration_since(*start));
                later.unwrap_or(*wall)
            }
        }
    }
}

/// Runs until the supervisor decides to exit; returns the exit code.
pub fn run(mut options: Options) -> Result<i32, Error> {
    let manager = std::env::var("NOTIFY_SOCKET").ok().map(notify::Upward::new);
    // Services must not talk to our manager: remove it before any spawn.
    std::env::remove_var("NOTIFY_SOCKET");
    let mut signals = vec![libc::SIGCHLD, libc::SIGHUP, libc::SIGPWR, crate::signal::halt()];
    signals.extend([libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2]);
    let reactor = Reactor::new(&signals).map_err(Error::Reactor)?;
    let now = Instant::now();
    let clock = WallClock::from_env(now);
    let (units, invalid, hold) = load(&options);
    let mut services = Services::new(random_token());
    services.hold_pipes(hold);
    let supervisor = Supervisor::new(units, invalid, options.shutdown_timeout, now);
    let mut ctl = options.socket.as_ref().and_then(|config| {
        Server::bind(config, reactor.registry())
            .inspect_err(|e| warn!("{}; running without it", crate::sys::chain(e)))
            .ok()
    });
    if let (Some(server), Some(machine)) = (&mut ctl, options.machine_socket.take()) {
        if let Err(e) = server.add_listener(machine) {
            warn!("cannot serve the machine's host-side control socket: {e}");
        }
    }
    let mut init = Init {
        options,
        supervisor,
        services,
        reactor,
        manager,
        changes: Vec::new(),
        drained: 0,
        ctl,
        clock,
        reap_owed: false,
        untold: Vec::new(),
    };
    init.supervisor.set_wall(now, init.clock.at(now));
    // From here on, tend's output never blocks the loop.
    super::output::start();
    init.supervisor.boot(now);
    let result = init.run();
    super::output::finish(OUTPUT_GRACE);
    result
}

/// How long tend waits at exit for a stalled reader of its output.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// Changes in one turn of the loop after which the heap is trimmed.
const BURST: usize = 1024;

/// Untold lines whose room is kept from one turn to the next.
const UNTOLD_ROOM: usize = 64;

impl Init {
    fn run(&mut self) -> Result<i32, Error> {
        let mut started = false;
        loop {
            let exit = self.act()?;
            if exit.is_none() && std::mem::take(&mut self.reap_owed) {
                // The children the signal did not name, once the restarts
                // this turn owes are out; what they say, acted on at once.
                self.reap_all(Instant::now());
                continue;
            }
            // What the manager is owed, once a turn (STOPPING=1 too, before
            // an exit), without waiting.
            if let Some(manager) = &mut self.manager {
                manager.flush(self.reactor.registry());
            }
            let changes = std::mem::take(&mut self.changes);
            self.with_ctl(|ctl, init| ctl.settle(init, &changes, Instant::now()));
            drop(changes);
            if std::mem::take(&mut self.drained) >= BURST {
                // A boot or reload of many services: give back what it freed.
                crate::sys::memory::trim_heap();
            }
            if let Some(code) = exit {
                if let Some(ctl) = &mut self.ctl {
                    ctl.close();
                }
                self.services.cleanup();
                stop_strays();
                return Ok(code);
            }
            let control = self.ctl.as_ref().and_then(|c| c.next_deadline(Instant::now()));
            let deadline = [self.supervisor.next_deadline(), self.services.next_deadline(), control]
                .into_iter()
                .flatten()
                .min();
            super::output::settle(self.reactor.registry());
            if !std::mem::replace(&mut started, true) {
                // Once the first services are spawned (a booted machine's
                // command runs meanwhile), before the first sleep.
                crate::sys::memory::shed_startup();
            }
            let wake = self.reactor.wait(deadline).map_err(Error::Wait)?;
            let now = Instant::now();
            self.supervisor.set_wall(now, self.clock.at(now));
            let child = wake.signals.child();
            for signal in wake.signals {
                self.signal(signal, child, now);
            }
            for token in wake.ready {
                if token == notify::TOKEN {
                    if let Some(manager) = &mut self.manager {
                        manager.flush(self.reactor.registry());
                    }
                    continue;
                }
                if super::output::owns(token) {
                    continue; // written at the next settle
                }
                if self.ctl.as_ref().is_some_and(|c| c.owns(token)) {
                    self.with_ctl(|ctl, init| ctl.ready(token, init, now));
                    continue;
                }
                for event in self.services.ready(token, now, self.reactor.registry()) {
                    self.feed(event, now);
                }
            }
            if deadline.is_some_and(|d| now >= d) {
                for event in self.services.on_timer(now, self.reactor.registry()) {
                    self.feed(event, now);
                }
                self.feed(Event::Timer, now);
            }
        }
    }

    /// `child`: the child the first SIGCHLD named, if any.
    fn signal(&mut self, signal: i32, child: Option<i32>, now: Instant) {
        match signal {
            // That child alone first (a wait for one pid reads that child
            // only, where `waitpid(-1)` reads them all: at 1000 services,
            // most of a restart's wait); the others after this turn's
            // actions (see `run`).
            libc::SIGCHLD => {
                let named = child.and_then(|pid| process::wait_for(pid, true).ok().flatten().map(|ended| (pid, ended)));
                match named {
                    Some((pid, status)) => {
                        self.reap_owed = true;
                        self.exited(pid, status, now);
                    }
                    None => self.reap_all(now),
                }
            }
            libc::SIGHUP => {
                // A failure is in the log; the units stay as they were.
                let _ = self.reload(now);
            }
            libc::SIGUSR1 | libc::SIGUSR2 => debug!("ignoring {}", crate::signal::name(signal)),
            _ => {
                info!("{}: shutting down", crate::signal::name(signal));
                self.feed(Event::Shutdown, now);
            }
        }
    }

    /// Reaps every child that has exited.
    fn reap_all(&mut self, now: Instant) {
        for (pid, status) in process::reap().exited {
            self.exited(pid, status, now);
        }
    }

    fn exited(&mut self, pid: i32, status: crate::sys::ExitStatus, now: Instant) {
        if self.ctl.as_mut().is_some_and(|c| c.reaped(pid, status)) {
            return;
        }
        if let Some(event) = self.services.exited(pid, status, now, self.reactor.registry()) {
            if let Event::Exited {
                service: Some(name),
                status,
                ..
            } = &event
            {
                let (name, status) = (name.clone(), *status);
                self.untold.push(Untold::Exit { name, pid, status });
            }
            self.feed(event, now);
        }
    }

    /// Runs the control server with access to the loop.
    fn with_ctl(&mut self, f: impl FnOnce(&mut Server, &mut Init)) {
        if let Some(mut ctl) = self.ctl.take() {
            f(&mut ctl, self);
            self.ctl = Some(ctl);
        }
    }

    fn feed(&mut self, event: Event, now: Instant) {
        if let Err(e) = self.supervisor.handle(event, now) {
            warn!("{e}");
        }
    }

    /// Carries out every pending action, each after the changes that came
    /// before it (so the log tells things in order); `Some(code)` when it
    /// is time to exit.
    fn act(&mut self) -> Result<Option<i32>, Error> {
        loop {
            self.take_changes();
            let Some(action) = self.supervisor.poll_action() else {
                self.tell();
                return Ok(None);
            };
            if !matches!(action, Action::Spawn { .. }) {
                self.tell();
            }
            let now = Instant::now();
            let registry = self.reactor.registry();
            match action {
                Action::Spawn { name } => {
                    let event = match self.supervisor.definition(&name) {
                        Some(unit) => {
                            if !unit.resources.is_empty() {
                                // Its limits may warn: after what came before.
                                self.tell();
                            }
                            self.services.spawn(&unit, self.reactor.registry())
                        }
                        None => Event::SpawnFailed {
                            name,
                            reason: "no definition".into(),
                        },
                    };
                    // What came before the spawn is told after it, in the
                    // same order: formatting a restart's lines was about a
                    // tenth of tend's part of a restart.
                    self.tell();
                    match &event {
                        Event::Spawned { name, pid } => info!("started {name} (pid {pid})"),
                        Event::SpawnFailed { name, reason } => warn!("{name}: {reason}"),
                        _ => {}
                    }
                    self.feed(event, now);
                }
                Action::StartReadyCheck { name } => {
                    if let Some(unit) = self.supervisor.definition(&name) {
                        self.services.start_check(&unit, now, registry);
                    }
                }
                Action::CancelReadyCheck { name } => self.services.cancel_check(&name, registry),
                Action::Probe { name } => {
                    let answer = match self.supervisor.definition(&name) {
                        Some(unit) => self.services.probe(&unit, registry),
                        None => None,
                    };
                    if let Some(event) = answer {
                        self.feed(event, now);
                    }
                }
                Action::CancelProbe { name } => self.services.cancel_probe(&name, registry),
                Action::Signal { name, signal } => self.services.signal(&name, signal),
                Action::KillAll { name } => self.services.signal(&name, libc::SIGKILL),
                Action::NotifyManager {
                    ready,
                    status,
                    stopping,
                } => self.notify_manager(ready, &status, stopping),
                Action::Exit { code } => {
                    self.drain_changes();
                    info!("exiting with code {code}");
                    return Ok(Some(code));
                }
            }
        }
    }

    fn drain_changes(&mut self) {
        self.take_changes();
        self.tell();
    }

    /// Takes the supervisor's changes, acting on removals at once; their
    /// lines wait for `tell`.
    fn take_changes(&mut self) {
        while let Some(change) = self.supervisor.poll_change() {
            self.drained = self.drained.saturating_add(1);
            if change.removed {
                self.services.forget(&change.to.name, self.reactor.registry());
            }
            self.untold.push(Untold::Change(change));
        }
    }

    /// Logs each exit and change taken, in order (`web (pid 7) exited with
    /// status 1`, `web: ready`, `db: failed (start limit reached)`), and
    /// keeps the changes for the control server.
    fn tell(&mut self) {
        let mut untold = std::mem::take(&mut self.untold);
        for item in untold.drain(..) {
            let change = match item {
                Untold::Exit { name, pid, status } => {
                    info!("{name} (pid {pid}) {status}");
                    continue;
                }
                Untold::Change(change) => change,
            };
            let to = &change.to;
            match (&to.detail, change.removed) {
                (_, true) => info!("{}: removed", to.name),
                (_, false) if change.from == Some(to.state) => {
                    let health = match to.health {
                        Some(Health::Starting) | None => "health check starting".to_string(),
                        Some(health) => health.to_string(),
                    };
                    info!("{}: {health}", to.name);
                }
                (Some(detail), false) => info!("{}: {} ({detail})", to.name, to.state),
                (None, false) => info!("{}: {}", to.name, to.state),
            }
            if self.ctl.is_some() {
                self.changes.push(change);
            }
        }
        // Its room, kept for the next turn unless a burst (a boot of
        // thousands) made it large.
        if untold.capacity() <= UNTOLD_ROOM {
            self.untold = untold;
        }
    }

    fn notify_manager(&mut self, ready: bool, status: &str, stopping: bool) {
        if let Some(manager) = &mut self.manager {
            manager.owe(ready, status, stopping);
            // READY=1 and STOPPING=1 at once; a summary alone waits for the
            // turn's end, merged with the turn's later ones.
            if ready || stopping {
                manager.flush(self.reactor.registry());
            }
        }
    }

    /// SIGHUP: read the units again; the supervisor diffs and acts. A
    /// directory that cannot be read (renamed, unmounted, no permission)
    /// changes nothing: read as empty, it would stop every service.
    fn reload(&mut self, now: Instant) -> Result<(), String> {
        let dir = &self.options.units;
        info!("reloading units from {}", dir.display());
        if let Err(e) = std::fs::read_dir(dir) {
            // `init -- CMD` runs without a unit directory, as at its start.
            if self.options.command.is_empty() || e.kind() != std::io::ErrorKind::NotFound {
                let why = crate::sys::describe(&e);
                let e = format!(
                    "cannot reload: cannot read {}: {why}; the units stay as they were",
                    dir.display()
                );
                warn!("{e}");
                return Err(e);
            }
        }
        let (services, invalid, hold) = load(&self.options);
        self.services.hold_pipes(hold);
        self.supervisor.reload(services, invalid, now);
        // Limits change in place, from the definitions the supervisor
        // now holds (a unit it restarts gets them at its new start).
        for name in self.services.running() {
            if let Some(unit) = self.supervisor.definition(&name) {
                self.services.update_limits(&unit);
            }
        }
        Ok(())
    }
}

/// What the control server may see and do.
impl Host for Init {
    fn status(&self) -> Vec<ServiceStatus> {
        self.supervisor.status()
    }

    fn service(&self, name: &str) -> Option<ServiceStatus> {
        self.supervisor.service(name)
    }

    fn next_change(&self) -> u64 {
        self.supervisor.changes_emitted()
    }

    fn request(&mut self, event: Event) -> Result<(), SupervisorError> {
        self.supervisor.handle(event, Instant::now())
    }

    fn signal(&mut self, name: &str, signal: i32) {
        self.services.signal(name, signal);
    }

    fn reload(&mut self) -> Result<(), String> {
        Init::reload(self, Instant::now())
    }

    fn ring(&self, name: &str) -> Option<&Ring> {
        self.services.ring(name)
    }

    fn usage(&self, name: &str) -> Option<crate::sys::cgroup::Usage> {
        self.services.usage(name)
    }

    fn usages(&self) -> super::control::task::Usages<'_> {
        Box::new(self.services.usages())
    }

    fn own_log(&self, lines: usize) -> Option<std::io::Result<Vec<String>>> {
        let file = self.options.own_log.as_ref()?;
        Some(super::own_log::tail(file, lines))
    }
}

/// The valid units, the invalid ones' errors, and whether the services'
/// log pipes are kept across their runs (see `fit_fds`).
type Loaded = (BTreeMap<String, Unit>, BTreeMap<String, String>, bool);

/// The units of the directory plus the main command, each invalid one
/// logged with its message.
fn load(options: &Options) -> Loaded {
    let mut loaded = unit::Loaded::default();
    if options.units.is_dir() || options.command.is_empty() {
        loaded = unit::load_dir(&options.units, &CheckEnv::for_root(std::path::Path::new("/")));
    }
    for error in loaded.all_errors() {
        warn!("{error}");
    }
    let mut invalid: BTreeMap<String, String> = crate::sorted::map(loaded.invalid.iter().map(|(name, errors)| {
        (
            name.clone(),
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        )
    }));
    let mut units = loaded.units;
    for unit in units.values_mut() {
        unit.service.on_failure.get_or_insert(options.on_failure);
    }
    if !options.command.is_empty() {
        if units.remove(MAIN).is_some() || invalid.remove(MAIN).is_some() {
            warn!("unit {MAIN} is ignored: the command given after -- runs under that name");
        }
        units.insert(MAIN.into(), main_unit(options));
    }
    let hold = fit_fds(&mut units, &mut invalid, nofile_soft());
    (units, invalid, hold)
}

/// Descriptors tend keeps for its own loop, beyond those of the services
/// and of control connections.
const OWN_FDS: u64 = 16;

/// tend's soft `RLIMIT_NOFILE`, as raised at start.
fn nofile_soft() -> u64 {
    use nix::sys::resource::{getrlimit, Resource};
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Descriptors PID 1 holds for a service: a pipe for each stream it logs
/// (both ends when kept across its runs: `hold`), a notify socket, its
/// cgroup's directory (counted on hosts without cgroups too: one a service
/// to spare there; its v1 `tasks` files are open during the spawn only),
/// and with `hold` its `cgroup.events` (and the first few their `cpu.stat`:
/// see `fit_fds`). None for a disabled one: it does not start at boot.
fn fds_of(unit: &Unit, hold: bool) -> u64 {
    if !unit.service.enabled {
        return 0;
    }
    let logged = [&unit.stdout, &unit.stderr]
        .into_iter()
        .filter(|s| matches!(s, unit::Stdio::Log | unit::Stdio::Rotated(_)));
    let notify = unit.service.service_type == crate::supervisor::ServiceType::Notify;
    (logged.count() as u64)
        .saturating_mul(if hold { 2 } else { 1 })
        .saturating_add(u64::from(notify))
        .saturating_add(if hold { 2 } else { 1 })
}

/// Services get what the control server leaves (it takes up to half the
/// limit for clients) less tend's own. Their log pipes and cgroups are
/// kept across their runs (a restart then makes no pipe and opens nothing,
/// and a dying process wakes no one) when that fits; else made at each
/// start. Enabled units past even that (the main service first, then by
/// name) are refused as invalid, with one line giving the numbers, rather
/// than failing their spawns one by one. Whether the pipes are kept.
fn fit_fds(units: &mut BTreeMap<String, Unit>, invalid: &mut BTreeMap<String, String>, soft: u64) -> bool {
    let conns = (soft / 2).min(control::server::MAX_CONNS as u64);
    let budget = soft.saturating_sub(conns).saturating_sub(OWN_FDS);
    let need = |hold: bool| units.values().map(|u| fds_of(u, hold)).fold(0, u64::saturating_add);
    // Kept cgroups keep the `cpu.stat` of the first services a status reads.
    let started = units.values().filter(|u| u.service.enabled).count();
    let stats = started.min(crate::sys::cgroup::KEPT_CPU_STATS) as u64;
    if need(true).saturating_add(stats) <= budget {
        return true;
    }
    let need = need(false);
    debug!("RLIMIT_NOFILE {soft} leaves {budget} descriptors for services: their log pipes are made at each start");
    if need <= budget {
        return false;
    }
    let mut order: Vec<String> = units.keys().filter(|n| *n != MAIN).cloned().collect();
    if units.contains_key(MAIN) {
        order.insert(0, MAIN.into());
    }
    let mut used = 0u64;
    let mut refused = Vec::new();
    for name in order {
        let fds = units.get(&name).map_or(0, |u| fds_of(u, false));
        match used.saturating_add(fds) <= budget {
            true => used = used.saturating_add(fds),
            false => refused.push(name),
        }
    }
    let reason = format!(
        "not started: the units need {need} file descriptors, RLIMIT_NOFILE {soft} leaves {budget} for services"
    );
    warn!(
        "{} of {} units not started: they need {need} file descriptors, RLIMIT_NOFILE {soft} leaves {budget} for services (raise the hard limit)",
        refused.len(),
        units.len()
    );
    for name in refused {
        units.remove(&name);
        invalid.insert(name, reason.clone());
    }
    false
}

/// `-- CMD` as a unit: not restarted, its exit is tend's exit.
fn main_unit(options: &Options) -> Unit {
    let mut unit = Unit::from_argv(MAIN, options.command.clone());
    unit.service.main = true;
    unit.service.restart = crate::supervisor::RestartPolicy::No;
    unit.stdout = unit::Stdio::Inherit;
    unit.stderr = unit::Stdio::Inherit;
    unit.working_dir = options.cwd.clone();
    unit
}

/// As a subreaper, orphans still running when tend exits would outlive it.
fn stop_strays() {
    let own = std::process::id() as i32;
    if own == 1 {
        return;
    }
    for pid in process::descendants(own).unwrap_or_default() {
        let _ = process::kill(pid, libc::SIGKILL);
    }
}

/// 64 random bits in hex, from the kernel.
fn random_token() -> String {
    let mut bytes = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    if bytes == [0; 8] {
        // No /dev yet (a bare PID 1): the pid and time are unique enough.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes = (nanos.as_nanos() as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(n: usize) -> BTreeMap<String, Unit> {
        let argv = vec![OsString::from("sleep"), OsString::from("1")];
        (0..n)
            .map(|i| format!("s{i:03}"))
            .map(|name| (name.clone(), Unit::from_argv(&name, argv.clone())))
            .collect()
    }

    #[test]
    fn a_large_limit_leaves_services_all_but_the_clients_share() {
        // 20000 - 4096 - 16 = 15888, less 64 kept cpu.stat files: 2637
        // services of 6 descriptors (both ends of two pipes, the cgroup and
        // its events, kept), 5296 of 3 (the pipes made at each start).
        let mut invalid = BTreeMap::new();
        assert!(fit_fds(&mut units(2637), &mut invalid, 20000), "kept");
        assert!(!fit_fds(&mut units(2638), &mut invalid, 20000), "made at each start");
        assert!(!fit_fds(&mut units(5296), &mut invalid, 20000));
        assert_eq!(invalid.len(), 0);
        let mut all = units(5297);
        fit_fds(&mut all, &mut invalid, 20000);
        assert_eq!(invalid.len(), 1);
    }

    #[test]
    fn disabled_units_need_no_descriptors() {
        let mut all = units(100);
        for unit in all.values_mut() {
            unit.service.enabled = false;
        }
        let mut invalid = BTreeMap::new();
        assert!(fit_fds(&mut all, &mut invalid, 64));
        assert_eq!((all.len(), invalid.len()), (100, 0));
    }

    #[test]
    fn units_that_fit_the_descriptor_limit_are_left_alone() {
        let mut all = units(100);
        let mut invalid = BTreeMap::new();
        fit_fds(&mut all, &mut invalid, 1024);
        assert_eq!((all.len(), invalid.len()), (100, 0));
    }

    #[test]
    fn units_past_the_descriptor_limit_are_refused_with_the_numbers() {
        let mut all = units(150);
        all.insert(MAIN.into(), Unit::from_argv(MAIN, vec![OsString::from("sh")]));
        let mut invalid = BTreeMap::new();
        // 512 - 256 - 16 = 240 descriptors, 3 a service: 80 fit.
        fit_fds(&mut all, &mut invalid, 512);
        assert_eq!((all.len(), invalid.len()), (80, 71));
        assert!(all.contains_key(MAIN), "the main service goes first");
        assert!(all.contains_key("s078") && !all.contains_key("s079") && invalid.contains_key("s079"));
        let reason = &invalid["s149"];
        assert!(
            reason.contains("453 file descriptors") && reason.contains("RLIMIT_NOFILE 512"),
            "{reason}"
        );
    }
}
