//! The services' side of the init loop: starting a unit's process (with its
//! user, limits, output capture, notify socket and cgroup), signalling it,
//! reading what it writes and sends, and running its ready checks.
//! Decisions stay in the supervisor; this only carries them out.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use tracing::{debug, info, warn};

use super::capture::{Lines, Ring};
use super::logfile::LogFile;
use super::notify::{self, Notice};
use super::output::{self, Stream};
use super::probe::{self, Probes};
use super::ready::{AsService, Checks};
use crate::resources::Layout;
use crate::supervisor::{Event, ExitStatus};
use crate::sys::cgroup::{Cgroup, Cgroups, Usage};
use crate::sys::spawn::{self, Credentials, Spawn};
use crate::sys::{describe, process};
use crate::unit::{self, Resources, Unit};

/// The name under which `tend init -- CMD` runs CMD.
pub const MAIN: &str = "main";

/// Reads of 8 KiB a log pipe gets in one turn of the loop. With `yes`
/// writing, a turn is about 5 ms (32 KiB of two-byte lines); a writer of
/// long lines pays one more loop turn each 32 KiB.
const READS_PER_TURN: usize = 4;

/// Notices read from a notify socket in one turn of the loop (the last
/// message read may bring a few hundred more).
const NOTICES_PER_TURN: usize = 64;

/// A running process of a service: its pid beside the boxed rest, so the
/// walk that finds the service of a reaped pid reads the table's nodes
/// only, not a record for each service (at 5000, a cache miss each).
#[derive(Debug)]
struct Running {
    pid: i32,
    /// Its cgroup's OOM kills when it started (saturated): more at its
    /// exit means the kernel killed for memory. Beside the pid, in what
    /// would be padding.
    oom_base: u32,
    proc: Box<Proc>,
}

/// What tend keeps of a running process besides its pid.
#[derive(Debug)]
struct Proc {
    cgroup: Option<Cgroup>,
    /// The tokens of its stdout and stderr pipes (see `Pipes`).
    pipes: Pipes,
}

/// The tokens of a service's kept log pipes, stdout then stderr; 0 where
/// none is kept (tokens start at 1). Two half words: a `Proc` stays within
/// its allocator size class (a pipe is kept only under a token that fits).
type Pipes = [u32; 2];

impl Running {
    /// Sends `signal` to everything the service started: its cgroup, or
    /// else its process group.
    fn signal(&self, signal: i32) -> std::io::Result<()> {
        match &self.proc.cgroup {
            Some(cgroup) => cgroup.signal(signal),
            None => process::kill(self.pid.saturating_neg(), signal),
        }
    }
}

/// Something registered with the poller.
enum Source {
    /// A service's log pipe. Kept across its runs where descriptors allow
    /// (`write`: tend holds the write end too, so a run's exit neither
    /// ends the pipe, which would wake tend while the process dies, nor
    /// costs a new pipe at restart); else it ends with the run.
    Log {
        service: Arc<str>,
        stderr: bool,
        fd: OwnedFd,
        write: Option<OwnedFd>,
        lines: Lines,
    },
    Notify {
        service: Arc<str>,
        socket: UnixDatagram,
    },
}

pub struct Services {
    /// Random, so notify sockets and cgroups of two tends never collide.
    token: String,
    cgroups: Option<Cgroups>,
    /// The record boxed: services start in name order, and a B-tree
    /// filled in order leaves its nodes half full; a pid and a pointer in
    /// each empty slot cost less than a record (0.05 KiB a service at 5000).
    procs: BTreeMap<Arc<str>, Running>,
    rings: BTreeMap<String, Ring>,
    /// Log files tend writes, by service and stream (stderr: `true`).
    files: BTreeMap<(String, bool), LogFile>,
    /// Services whose stderr names their stdout's log file (as `2>&1`):
    /// written into that one, so its size and rotation are one.
    merged: BTreeSet<String>,
    sources: HashMap<Token, Source>,
    /// Log pipes and notify sockets a turn left holding data (see
    /// `read_log`): read on at the next turn, which does not wait.
    unread: Vec<Token>,
    next_token: usize,
    checks: Checks,
    probes: Probes,
    /// Units already told that their limits cannot be (all) applied.
    warned: std::collections::BTreeSet<String>,
    /// The limits in force for each service (written to its cgroup where
    /// it has one), which outlive its runs: a restart writes only what
    /// differs, resets included.
    applied: BTreeMap<String, Resources>,
    /// Output files found on a full file system: said once each, again
    /// only after the file system had room.
    full: BTreeSet<PathBuf>,
    /// Services whose v2 cgroup was killed (`cgroup.kill`): made afresh
    /// at their next start (see `Cgroup::was_killed`).
    killed: BTreeSet<String>,
    /// `/dev/null`, open for the services' stdin: each start lends it
    /// instead of an open, which walks the path (4% of PID 1's time over
    /// restarts, by profile).
    null: Option<OwnedFd>,
    /// What services not running now keep for their next run.
    held: HashMap<Arc<str>, Held>,
    /// Whether new log pipes and cgroups are kept across runs (the
    /// descriptor limit decides: `init::fit_fds`).
    hold: bool,
}

/// What a service keeps between its runs, where descriptors allow (see
/// `Services::hold_pipes`): its log pipes, and its cgroup open (no
/// directory to open again at its start, no `cgroup.events` to open at
/// its exit).
#[derive(Debug, Default)]
struct Held {
    pipes: Pipes,
    cgroup: Option<Cgroup>,
}

/// Where one stream of a run goes, settled before the spawn lends it.
enum Out {
    Inherit,
    Null,
    /// Opened for this run: closed once the child has its copy.
    Owned(OwnedFd),
    /// A log pipe kept across runs.
    Pipe(Token),
}

impl Services {
    pub fn new(token: String) -> Services {
        let cgroups = Cgroups::detect(&token);
        match &cgroups {
            Some(_) => debug!("one cgroup per service (v2, and v1 controllers where v2 lacks them)"),
            None => debug!("no writable cgroup: services are tracked by process group"),
        }
        Services {
            token,
            cgroups,
            procs: BTreeMap::new(),
            rings: BTreeMap::new(),
            files: BTreeMap::new(),
            merged: BTreeSet::new(),
            sources: HashMap::new(),
            unread: Vec::new(),
            next_token: 1,
            checks: Checks::default(),
            probes: Probes::default(),
            warned: Default::default(),
            applied: BTreeMap::new(),
            full: BTreeSet::new(),
            killed: BTreeSet::new(),
            null: None,
            held: HashMap::new(),
            hold: true,
        }
    }

    /// Whether log pipes and cgroups made from now on are kept across runs.
    pub fn hold_pipes(&mut self, hold: bool) {
        self.hold = hold;
    }

    pub fn ring(&self, name: &str) -> Option<&Ring> {
        self.rings.get(name)
    }

    /// Starts a service's process; the answer for the supervisor, which
    /// the caller also logs.
    pub fn spawn(&mut self, unit: &Unit, registry: &Registry) -> Event {
        let name = unit.name.as_str();
        match self.start(unit, registry) {
            Ok(pid) => Event::Spawned { name: name.into(), pid },
            Err(reason) => spawn_failed(name, reason),
        }
    }

    fn start(&mut self, unit: &Unit, registry: &Registry) -> Result<i32, String> {
        let name = unit.name.as_str();
        // One copy of the name for all the sources it registers.
        let shared: Arc<str> = name.into();
        let mut env = env_of(unit);
        if unit.service.service_type == crate::supervisor::ServiceType::Notify {
            // The last run's socket holds the name: close it first.
            self.drop_sources(name, |s| matches!(s, Source::Notify { .. }), registry);
            let (socket, address) = notify::bind(&format!("tend/{}/{name}", self.token))
                .map_err(|e| format!("cannot create the notify socket: {}", describe(&e)))?;
            env.push(("NOTIFY_SOCKET".into(), address.into()));
            if let Some(every) = unit.service.watchdog {
                env.push(("WATCHDOG_USEC".into(), every.as_micros().to_string().into()));
            }
            self.register(
                Source::Notify {
                    service: shared.clone(),
                    socket,
                },
                registry,
            );
        }
        let held = self.held.remove(name).unwrap_or_default();
        let mut clone_into_cgroup = true;
        if let (true, Some(cgroups)) = (self.killed.contains(name), &self.cgroups) {
            if cgroups.remove_v2(name) {
                self.killed.remove(name);
                // On v2, its limits went with it: all written again.
                self.applied.remove(name);
            } else {
                clone_into_cgroup = false;
            }
        }
        let cgroup = match &self.cgroups {
            Some(cgroups) => {
                let needs = unit.resources.controllers();
                match held.cgroup.and_then(|kept| cgroups.reuse(kept, &needs)) {
                    Some(kept) => Some(kept),
                    None => Some(
                        cgroups
                            .create(shared.clone(), &needs)
                            .map_err(|e| format!("cannot create its cgroup: {}", describe(&e)))?,
                    ),
                }
            }
            None => None,
        };
        let oom_base = cgroup.as_ref().map_or(0, Cgroup::oom_kills_before_start);
        let oom_base = u32::try_from(oom_base).unwrap_or(u32::MAX);
        let old = self.applied.get(name).copied().unwrap_or_default();
        self.limit(name, cgroup.as_ref(), &old, &unit.resources);
        let stdout = self.output(unit, &shared, &unit.stdout, held.pipes[0], false, registry);
        let stderr = self.output(unit, &shared, &unit.stderr, held.pipes[1], true, registry);
        let pipes = [&stdout, &stderr].map(|out| match out {
            Ok(Out::Pipe(Token(token))) => u32::try_from(*token).unwrap_or(0),
            _ => 0,
        });
        // A start that fails keeps them for the next.
        let keep = |services: &mut Services, reason: String| {
            if pipes != [0, 0] {
                services.held.insert(shared.clone(), Held { pipes, cgroup: None });
            }
            reason
        };
        let (stdout, stderr) = match (stdout, stderr) {
            (Ok(stdout), Ok(stderr)) => (stdout, stderr),
            (Err(reason), _) | (_, Err(reason)) => return Err(keep(self, reason)),
        };
        let is_main = name == MAIN;
        if !is_main {
            self.open_null();
        }
        let spec = Spawn {
            argv: &unit.argv,
            // Found in PATH when the unit was loaded (or reloaded), as
            // systemd does: not looked up again at each start.
            program: Some(unit.program.as_path()).filter(|p| p.is_absolute()),
            cwd: unit.working_dir.as_deref(),
            new_group: true,
            take_terminal: is_main,
            new_session: !is_main,
            controlling_tty: false,
            env,
            // sd_watchdog_enabled() checks that it is the process meant.
            pid_variable: unit.service.watchdog.map(|_| "WATCHDOG_PID"),
            credentials: credentials(&unit.run_as),
            limits: unit
                .limits
                .iter()
                .map(|(r, l)| (r.to_nix() as i32, l.soft, l.hard))
                .collect(),
            stdin: if is_main { None } else { self.lend(&Out::Null) },
            stdout: self.lend(&stdout),
            stderr: self.lend(&stderr),
            cgroup_dir: cgroup.as_ref().and_then(Cgroup::v2_dir_fd),
            clone_into_cgroup,
            cgroup_procs: cgroup.as_ref().map(Cgroup::procs_fds).unwrap_or_default(),
            keep_inherited_fds: false,
            pass: Vec::new(),
        };
        let pid = match spawn::spawn(spec) {
            Ok(pid) => pid,
            Err(e) => return Err(keep(self, e.to_string())),
        };
        let mut cgroup = cgroup;
        if let Some(cgroup) = &mut cgroup {
            cgroup.spawned();
            if self.hold {
                Cgroups::keep_events(cgroup);
            }
        }
        let proc = Box::new(Proc { cgroup, pipes });
        self.procs.insert(shared, Running { pid, oom_base, proc });
        Ok(pid)
    }

    /// `/dev/null`, opened at the first ask that finds it (a booted
    /// machine has it once its mounts are made).
    fn open_null(&mut self) {
        if self.null.is_none() {
            self.null = spawn::dev_null();
        }
    }

    /// The descriptor a stream goes to, lent for the spawn.
    fn lend<'a>(&'a self, out: &'a Out) -> Option<spawn::Stream<'a>> {
        let fd = match out {
            Out::Inherit => return None,
            Out::Null => self.null.as_ref()?.as_fd(),
            Out::Owned(fd) => fd.as_fd(),
            Out::Pipe(token) => match self.sources.get(token)? {
                Source::Log { write, .. } => write.as_ref()?.as_fd(),
                Source::Notify { .. } => return None,
            },
        };
        Some(spawn::Stream::Kept(fd))
    }

    /// Takes a service's cgroup limits from `old` to `new`; what cannot be
    /// applied is said once per unit (and the service runs anyway).
    fn limit(&mut self, name: &str, cgroup: Option<&Cgroup>, old: &Resources, new: &Resources) {
        if new.is_empty() && old.is_empty() {
            return;
        }
        self.applied.insert(name.into(), *new);
        let Some(cgroup) = cgroup else {
            if self.warned.insert(name.into()) {
                warn!("{name}: {}", unit::READ_ONLY);
            }
            return;
        };
        let mut problems = cgroup.apply(old, new);
        if cgroup.layout(unit::resources::Controller::Memory) == Some(Layout::V1) {
            let ignored = new.unsupported(Layout::V1);
            problems.extend(
                ignored
                    .iter()
                    .map(|k| format!("{k} ignored: cgroup v1 has no equivalent")),
            );
        }
        if !problems.is_empty() && self.warned.insert(name.into()) {
            warn!("{name}: limits: {}", problems.join("; "));
        }
    }

    /// Applies a service's new cgroup limits in place (a reload), if it
    /// runs and they changed.
    pub fn update_limits(&mut self, unit: &Unit) {
        let Some(Running { proc, .. }) = self.procs.get_mut(unit.name.as_str()) else {
            return;
        };
        let old = self.applied.get(&unit.name).copied().unwrap_or_default();
        if old == unit.resources {
            return;
        }
        let mut cgroup = proc.cgroup.take();
        if let Some(cgroup) = &mut cgroup {
            // A limit of a v1 controller it was started without.
            if let Err(e) = cgroup.extend(&unit.resources.controllers()) {
                warn!(
                    "{}: cannot join the cgroups of its new limits: {}",
                    unit.name,
                    describe(&e)
                );
            }
        }
        self.warned.remove(&unit.name);
        self.limit(&unit.name, cgroup.as_ref(), &old, &unit.resources);
        info!("{}: limits changed in place", unit.name);
        if let Some(Running { proc, .. }) = self.procs.get_mut(unit.name.as_str()) {
            proc.cgroup = cgroup;
        }
    }

    /// What a running service uses, read from its cgroup now.
    pub fn usage(&self, name: &str) -> Option<Usage> {
        // A service has a cgroup only under tend's roots.
        let cgroup = self.procs.get(name)?.proc.cgroup.as_ref()?;
        Some(self.cgroups.as_ref()?.usage_of(cgroup))
    }

    /// What every running service uses, by name in `str` order, each
    /// read as it is taken.
    pub fn usages(&self) -> impl Iterator<Item = (Arc<str>, Usage)> + '_ {
        let cgroups = self.cgroups.as_ref();
        let with_cgroup = self
            .procs
            .iter()
            .filter_map(move |(name, running)| Some((name, cgroups?, running.proc.cgroup.as_ref()?)));
        with_cgroup.map(|(name, cgroups, cgroup)| (name.clone(), cgroups.usage_of(cgroup)))
    }

    /// The names of the services running now.
    pub fn running(&self) -> Vec<String> {
        self.procs.keys().map(|n| n.to_string()).collect()
    }

    /// Where one output stream goes; for `log`, a pipe whose read end the
    /// loop watches.
    fn output(
        &mut self,
        unit: &Unit,
        shared: &Arc<str>,
        to: &unit::Stdio,
        held: u32,
        stderr: bool,
        registry: &Registry,
    ) -> Result<Out, String> {
        let name = unit.name.as_str();
        let key = (name.to_string(), stderr);
        let merged = match (&unit.stdout, to) {
            (unit::Stdio::Rotated(out), unit::Stdio::Rotated(err)) => stderr && out.path == err.path,
            _ => false,
        };
        match to {
            _ if merged => {
                drop(self.files.remove(&key));
                if !self.merged.contains(name) {
                    self.merged.insert(name.into());
                }
            }
            unit::Stdio::Rotated(spec) => {
                if self.files.get(&key).map(LogFile::spec) != Some(spec) {
                    self.files.insert(key, LogFile::open(spec)?);
                }
            }
            _ => drop(self.files.remove(&key)),
        }
        if stderr && !merged {
            self.merged.remove(name);
        }
        let logged = matches!(to, unit::Stdio::Log | unit::Stdio::Rotated(_));
        if held != 0 && !(logged && self.hold) {
            // Its output goes elsewhere now, or pipes are no longer kept:
            // the pipe of its last run goes.
            self.close_pipe(Token(held as usize), registry);
        }
        match to {
            unit::Stdio::Inherit => Ok(Out::Inherit),
            unit::Stdio::Null => {
                self.open_null();
                Ok(Out::Null)
            }
            unit::Stdio::File(path) => {
                let file = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o644)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(path);
                let file = file.map_err(|e| format!("cannot open {}: {}", path.display(), describe(&e)))?;
                self.warn_if_full(name, path, &file);
                Ok(Out::Owned(file.into()))
            }
            unit::Stdio::Log | unit::Stdio::Rotated(_) => {
                // Made at the first line (most services say little) unless
                // the unit keeps another number of lines.
                let lines = unit.log_buffer_lines;
                match self.rings.get(name) {
                    Some(ring) if ring.capacity() == lines => {}
                    None if lines == unit::DEFAULT_LOG_BUFFER_LINES => {}
                    _ => drop(self.rings.insert(name.into(), Ring::new(lines))),
                }
                let held = Token(held as usize);
                // (Closed above when pipes are no longer kept.)
                if matches!(self.sources.get(&held), Some(Source::Log { .. })) {
                    return Ok(Out::Pipe(held));
                }
                let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                    .map_err(|e| format!("cannot create a pipe: {e}"))?;
                // The service's end blocks, as a program expects of stdout.
                let flags = nix::fcntl::OFlag::empty();
                nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(|e| format!("pipe: {e}"))?;
                let hold = self.hold && u32::try_from(self.next_token).is_ok();
                let (kept, lent) = match hold {
                    true => (Some(write), None),
                    false => (None, Some(write)),
                };
                let source = Source::Log {
                    service: shared.clone(),
                    stderr,
                    fd: read,
                    write: kept,
                    lines: Lines::default(),
                };
                let token = self.register(source, registry);
                Ok(lent.map_or(Out::Pipe(token), Out::Owned))
            }
        }
    }

    fn register(&mut self, source: Source, registry: &Registry) -> Token {
        let token = Token(self.next_token);
        self.next_token = self.next_token.saturating_add(1);
        let result = match &source {
            Source::Log { fd, .. } => registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE),
            Source::Notify { socket, .. } => {
                registry.register(&mut SourceFd(&socket.as_raw_fd()), token, Interest::READABLE)
            }
        };
        if let Err(e) = result {
            warn!("cannot watch a source: {e}");
        }
        self.sources.insert(token, source);
        token
    }

    /// A run's last output, read and told (with its last line, unended);
    /// the pipe stays for the next run.
    fn end_of_run(&mut self, pipes: Pipes, registry: &Registry) {
        for token in pipes.into_iter().filter(|&t| t != 0) {
            self.read_log(Token(token as usize), true, registry);
        }
    }

    /// Closes a log pipe, after what is left in it.
    fn close_pipe(&mut self, token: Token, registry: &Registry) {
        self.read_log(token, true, registry);
        if let Some(source) = self.sources.remove(&token) {
            deregister(&source, registry);
        }
    }

    /// A reload removed the service (it has stopped): its pipes go.
    pub fn forget(&mut self, name: &str, registry: &Registry) {
        for token in self.held.remove(name).unwrap_or_default().pipes {
            if token != 0 {
                self.close_pipe(Token(token as usize), registry);
            }
        }
        for stderr in [false, true] {
            drop(self.files.remove(&(name.to_string(), stderr)));
        }
        self.merged.remove(name);
    }

    fn drop_sources(&mut self, name: &str, which: impl Fn(&Source) -> bool, registry: &Registry) {
        let tokens: Vec<Token> = self
            .sources
            .iter()
            .filter(|(_, s)| which(s) && source_service(s) == name)
            .map(|(t, _)| *t)
            .collect();
        for token in tokens {
            if let Some(source) = self.sources.remove(&token) {
                deregister(&source, registry);
            }
        }
    }

    /// Sends `signal` to everything the service started.
    pub fn signal(&self, name: &str, signal: i32) {
        let Some(running) = self.procs.get(name) else {
            return;
        };
        if let Err(e) = running.signal(signal) {
            warn!("cannot send {} to {name}: {e}", crate::signal::name(signal));
        }
    }

    /// A reaped pid: the service whose process it was (its leftovers are
    /// killed: a service is down when its main process is), or a check.
    pub fn exited(&mut self, pid: i32, status: ExitStatus, now: Instant, registry: &Registry) -> Option<Event> {
        if let Some(answer) = self.checks.exited(pid, status, now) {
            return answer;
        }
        if let Some(answer) = self.probes.exited(pid, status) {
            return Some(answer);
        }
        let name = self.procs.iter().find(|(_, p)| p.pid == pid).map(|(n, _)| n.clone());
        let Some(name) = name else {
            debug!("reaped orphan pid {pid}: {status}");
            return None;
        };
        let mut status = status;
        if let Some(mut running) = self.procs.remove(&name) {
            let pipes = running.proc.pipes;
            if pipes != [0, 0] {
                self.end_of_run(pipes, registry);
            }
            let memory_max = self.applied.get(&*name).and_then(|r| r.memory_max);
            status = oom_status(&running, memory_max, status);
            // Its leftovers killed, where it left any.
            let empty = match (&self.cgroups, &mut running.proc.cgroup) {
                (Some(cgroups), Some(cgroup)) => cgroups.is_empty(cgroup, self.hold) == Some(true),
                _ => false,
            };
            if !empty {
                let _ = running.signal(libc::SIGKILL);
            }
            if running.proc.cgroup.as_ref().is_some_and(Cgroup::was_killed) {
                self.killed.insert(name.to_string());
            }
            let cgroup = running.proc.cgroup.take().filter(|_| self.hold);
            if pipes != [0, 0] || cgroup.is_some() {
                self.held.insert(name.clone(), Held { pipes, cgroup });
            }
        }
        // Logged by the caller (see `Init::tell`).
        Some(Event::Exited {
            pid,
            status,
            service: Some(name.to_string()),
        })
    }

    /// A watched source is ready: read it; what it says for the supervisor.
    pub fn ready(&mut self, token: Token, now: Instant, registry: &Registry) -> Vec<Event> {
        if let Some(answer) = self.checks.answered(token, now, registry) {
            return answer.into_iter().collect();
        }
        if let Some(answer) = self.probes.ready(token, registry) {
            return answer.into_iter().collect();
        }
        let Some(source) = self.sources.get_mut(&token) else {
            return Vec::new();
        };
        match source {
            Source::Log { .. } => {
                self.read_log(token, false, registry);
                Vec::new()
            }
            Source::Notify { service, socket } => {
                let (events, more) = read_notify(service, socket);
                if more {
                    self.read_on(token);
                }
                events
            }
        }
    }

    /// Reads what a log pipe holds, telling it a read at a time (a fast
    /// writer is not gathered whole in memory); `flush`: the last line
    /// too, unended (its run is over). At most `READS_PER_TURN` reads: a
    /// writer faster than tend (`yes`) would keep the loop here, and every
    /// other service and client waiting; the rest is read at the next turn.
    fn read_log(&mut self, token: Token, flush: bool, registry: &Registry) {
        let mut buf = [0u8; 8192];
        for read in 1..=READS_PER_TURN {
            let Some(Source::Log {
                service,
                stderr,
                fd,
                lines,
                ..
            }) = self.sources.get_mut(&token)
            else {
                return;
            };
            let mut out = Vec::new();
            let (more, ended) = match nix::unistd::read(&*fd, &mut buf) {
                Ok(0) => (false, true),
                Ok(n) => {
                    lines.feed(buf.get(..n).unwrap_or_default(), &mut out);
                    (true, false)
                }
                Err(nix::errno::Errno::EAGAIN) => (false, false),
                Err(nix::errno::Errno::EINTR) => (true, false),
                Err(_) => (false, true),
            };
            // A run that is over has its last line told, unended, even
            // where the budget leaves bytes for the next turn.
            if ended || (flush && (!more || read == READS_PER_TURN)) {
                out.extend(lines.finish());
            }
            let (service, stderr) = (service.clone(), *stderr);
            self.print(&service, stderr, out);
            if ended {
                if let Some(source) = self.sources.remove(&token) {
                    deregister(&source, registry);
                }
            }
            if !more {
                return;
            }
        }
        self.read_on(token);
    }

    /// `token`'s source is read on at the next turn.
    fn read_on(&mut self, token: Token) {
        if !self.unread.contains(&token) {
            self.unread.push(token);
        }
    }

    /// Prints a service's lines with its name (or writes them to its log
    /// file, and prints them if it tees), and keeps them.
    fn print(&mut self, service: &str, stderr: bool, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        // A merged stderr writes into its stdout's file.
        let into = stderr && !self.merged.contains(service);
        let tee = match self.files.get_mut(&(service.to_string(), into)) {
            Some(file) => {
                file.write(lines.iter().map(String::as_str));
                file.spec().tee
            }
            None => true,
        };
        if tee {
            print_prefixed(service, stderr, &lines);
        }
        let ring = self
            .rings
            .entry(service.into())
            .or_insert_with(|| Ring::new(unit::DEFAULT_LOG_BUFFER_LINES));
        for line in lines {
            ring.push(line);
        }
    }

    /// Starts `unit`'s ready check, if it has one; an exec check runs as the
    /// service does.
    pub fn start_check(&mut self, unit: &Unit, now: Instant, registry: &Registry) {
        let Some(check) = unit.ready.as_deref() else {
            return;
        };
        let runs = match check {
            unit::Ready::Exec { .. } => AsService {
                env: env_of(unit),
                cwd: unit.working_dir.clone(),
                credentials: credentials(&unit.run_as),
            },
            unit::Ready::Tcp(_) => AsService::default(),
        };
        let token = self.next_token();
        self.checks.start(&unit.name, check, runs, token, now, registry);
    }

    fn next_token(&mut self) -> Token {
        let token = Token(self.next_token);
        self.next_token = self.next_token.saturating_add(1);
        token
    }

    /// Runs `unit`'s liveness probe once; `Some` when it failed at once.
    /// An exec probe runs as the service does: its user, environment and
    /// working directory.
    pub fn probe(&mut self, unit: &Unit, registry: &Registry) -> Option<Event> {
        let token = self.next_token();
        let mut spec = probe::exec_spec(unit, env_of(unit));
        spec.credentials = credentials(&unit.run_as);
        self.probes.start(unit, token, registry, spec)
    }

    pub fn cancel_probe(&mut self, name: &str, registry: &Registry) {
        self.probes.cancel(name, registry);
    }

    pub fn cancel_check(&mut self, name: &str, registry: &Registry) {
        self.checks.cancel(name, registry);
    }

    /// When a check is due to be tried again; now, while a source is left
    /// to read on.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.unread.is_empty() {
            true => self.checks.next_deadline(),
            // What a pipe still holds is read on without waiting.
            false => Some(Instant::now()),
        }
    }

    /// Reads on the sources a turn left unread (what they say, for the
    /// supervisor), and retries the checks that are due.
    pub fn on_timer(&mut self, now: Instant, registry: &Registry) -> Vec<Event> {
        let mut events = Vec::new();
        for token in std::mem::take(&mut self.unread) {
            events.extend(self.ready(token, now, registry));
        }
        for name in self.checks.due(now) {
            let token = self.next_token();
            self.checks.retry(&name, token, now, registry);
        }
        events
    }

    /// When tend exits: kill what is left in the services' cgroups and
    /// remove them (dropping `Cgroups` does the same on any other way out).
    pub fn cleanup(&mut self) {
        self.procs.clear();
        // The cgroups kept between runs close before their directories go.
        self.held.clear();
        drop(self.cgroups.take());
    }
}

/// Prints lines as `NAME: line` on tend's own output: written whole, so
/// lines of two services never interleave; never blocking the loop (see
/// `output`).
fn print_prefixed(service: &str, stderr: bool, lines: &[String]) {
    let mut text = String::new();
    for line in lines {
        text.push_str(service);
        text.push_str(": ");
        text.push_str(line);
        text.push('\n');
    }
    let stream = if stderr { Stream::Stderr } else { Stream::Stdout };
    output::write(stream, text.as_bytes());
}

/// A failed exit after the kernel's OOM killer killed in the service's
/// cgroup is named for it.
fn oom_status(running: &Running, memory_max: Option<u64>, status: ExitStatus) -> ExitStatus {
    let Some(cgroup) = &running.proc.cgroup else {
        return status;
    };
    if status.success() || cgroup.oom_kills() <= u64::from(running.oom_base) {
        return status;
    }
    ExitStatus::OomKilled {
        code: status.code(),
        memory_max: memory_max.filter(|m| *m != unit::resources::MAX),
    }
}

impl Services {
    /// The service's writes to a file on a full file system fail where
    /// tend cannot see them: say so at its start, once, not at each restart.
    fn warn_if_full(&mut self, name: &str, path: &Path, file: &std::fs::File) {
        let full = nix::sys::statvfs::fstatvfs(file).is_ok_and(|s| s.blocks() > 0 && s.blocks_available() == 0);
        if !full {
            self.full.remove(path);
        } else if self.full.insert(path.to_path_buf()) {
            warn!(
                "{name}: {} is on a full file system: its output there is lost until there is room",
                path.display()
            );
        }
    }
}

fn spawn_failed(name: &str, reason: String) -> Event {
    Event::SpawnFailed {
        name: name.into(),
        reason,
    }
}

fn source_service(source: &Source) -> &str {
    match source {
        Source::Log { service, .. } | Source::Notify { service, .. } => service,
    }
}

fn deregister(source: &Source, registry: &Registry) {
    let fd = match source {
        Source::Log { fd, .. } => fd.as_raw_fd(),
        Source::Notify { socket, .. } => socket.as_raw_fd(),
    };
    let _ = registry.deregister(&mut SourceFd(&fd));
}

/// What a service's notify socket holds, until `NOTICES_PER_TURN` are
/// read (a service sending without pause would hold the loop), and
/// whether more may wait.
fn read_notify(service: &str, socket: &UnixDatagram) -> (Vec<Event>, bool) {
    let mut events = Vec::new();
    let mut buf = [0u8; 4096];
    while events.len() < NOTICES_PER_TURN {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return (events, false),
        };
        for notice in notify::parse(&buf[..n]) {
            let name = service.to_string();
            events.push(match notice {
                Notice::Ready => Event::Ready { name },
                Notice::Status(text) => Event::Status { name, text },
                Notice::Stopping => Event::Stopping { name },
                Notice::Watchdog => Event::Watchdog { name },
                Notice::WatchdogTrigger => Event::WatchdogTrigger { name },
                Notice::ExtendTimeout(by) => Event::ExtendTimeout { name, by },
                Notice::WatchdogUsec(every) => Event::WatchdogInterval { name, every },
            });
        }
    }
    (events, true)
}

/// A service's own variables: its user's login ones, then the unit's `env`
/// over them (as with systemd's `User=` and `Environment=`).
fn env_of(unit: &Unit) -> Vec<(OsString, OsString)> {
    let mut env = unit.run_as.login_env();
    env.extend(unit.env.iter().map(|(k, v)| (k.into(), v.into())));
    env
}

/// The ids a service runs as; tend's own where the unit sets none (asked
/// once: they do not change, and each start would ask twice).
fn credentials(run_as: &unit::RunAs) -> Option<Credentials> {
    static OWN: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    let &(uid, gid) = OWN.get_or_init(|| (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw()));
    run_as.credentials(uid, gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_service_costs_stays_in_its_size_classes() {
        // At 5000 services every word counts (issue 14: 2 KiB a service):
        // a `Proc` of 72 bytes is an 80-byte chunk (73 would take 96), and a
        // source beside its token fills a 48-byte bucket of the table.
        assert_eq!(std::mem::size_of::<Running>(), 16);
        assert_eq!(std::mem::size_of::<Proc>(), 72);
        assert_eq!(std::mem::size_of::<Source>(), 40);
    }
}
