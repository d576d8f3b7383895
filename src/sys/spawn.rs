//! The spawner: the one place where tend forks and execs.
//!
//! std's `Command` does the fork, the exec and the report of exec errors
//! through a close-on-exec pipe. The `pre_exec` hook adds what a PID 1
//! owes its children, explicitly (std does not promise to empty the signal
//! mask): default signal dispositions (ignored signals would otherwise stay
//! ignored across exec), an empty signal mask (a blocked signal stays
//! blocked across exec), no inherited descriptor beyond 0, 1 and 2 unless
//! asked, the `RLIMIT_NOFILE` soft limit tend was started with, a process
//! group of their own, and the terminal's foreground.
//! A command that wants its own pid in a variable is exec'd by the hook
//! itself.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// How to start one command.
#[derive(Debug, Default)]
pub struct Spawn<'a> {
    /// The program and its arguments; the program is looked up in `PATH`.
    pub argv: &'a [OsString],
    pub cwd: Option<&'a Path>,
    /// Make the child the leader of a new process group, so signals can
    /// reach everything it starts in that group.
    pub new_group: bool,
    /// If our group owns the terminal on stdin, hand the foreground to the
    /// child's group (so Ctrl-C and job control reach it, as under tini).
    pub take_terminal: bool,
    /// Make the child the leader of a new session (services: no terminal).
    pub new_session: bool,
    /// With `new_session`: make its stdin (a terminal) the session's
    /// controlling terminal (`tend ctl exec -t`).
    pub controlling_tty: bool,
    /// Variables set on top of tend's own environment.
    pub env: Vec<(OsString, OsString)>,
    /// A variable set to the child's own pid (`WATCHDOG_PID`): known only
    /// after the fork, so the hook then execs by itself (see `PidExec`).
    pub pid_variable: Option<&'a str>,
    /// Run as this user and group, with these supplementary groups.
    pub credentials: Option<Credentials>,
    /// Resource limits to set: (resource, soft, hard).
    pub limits: Vec<(i32, u64, u64)>,
    /// Where the standard streams go; `None` inherits tend's.
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// Open `cgroup.procs` files (one per hierarchy: v2, and v1's
    /// controllers) the child writes itself into before exec, so it never
    /// runs outside its cgroups (not even to fork).
    pub cgroup_procs: Vec<RawFd>,
    /// Pass on the descriptors beyond 0, 1 and 2 that tend inherited (the
    /// child of `tend -- CMD`, as tini does); otherwise the child gets
    /// exactly 0, 1 and 2.
    pub keep_inherited_fds: bool,
}

/// Who a child runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// The command could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot execute {program}: {}", why(.source))]
pub struct SpawnError {
    pub program: String,
    pub source: io::Error,
}

/// The cause, with what EAGAIN means here: fork(2), or execve(2) after
/// setuid, over a process limit.
fn why(e: &io::Error) -> String {
    let text = super::describe(e);
    match e.raw_os_error() {
        Some(libc::EAGAIN) => format!("{text} (a process limit is reached: a pids cgroup or RLIMIT_NPROC)"),
        _ => text,
    }
}

impl SpawnError {
    /// A shell's exit code for this failure: 127 when there is no such
    /// program, 126 when it exists but cannot be executed.
    pub fn exit_code(&self) -> i32 {
        match self.source.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => 127,
            _ => 126,
        }
    }
}

/// Starts the command and returns its pid. The caller reaps it.
pub fn spawn(spec: Spawn) -> Result<i32, SpawnError> {
    let program = spec.argv.first().cloned().unwrap_or_default();
    let error = |source| SpawnError {
        program: program.to_string_lossy().into_owned(),
        source,
    };
    if program.is_empty() {
        return Err(error(io::Error::from_raw_os_error(libc::ENOENT)));
    }
    let mut cmd = Command::new(&program);
    cmd.args(&spec.argv[1..]);
    if let Some(dir) = spec.cwd {
        cmd.current_dir(dir);
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    for (fd, set) in [(spec.stdin, 0), (spec.stdout, 1), (spec.stderr, 2)] {
        if let Some(fd) = fd {
            let stdio = Stdio::from(fd);
            match set {
                0 => cmd.stdin(stdio),
                1 => cmd.stdout(stdio),
                _ => cmd.stderr(stdio),
            };
        }
    }
    let pid_exec = match spec.pid_variable {
        Some(name) => Some(PidExec::new(spec.argv, &spec.env, name).map_err(error)?),
        None => None,
    };
    let mut setup = ChildSetup {
        pid_exec,
        new_group: spec.new_group,
        take_terminal: spec.take_terminal,
        new_session: spec.new_session,
        controlling_tty: spec.controlling_tty,
        credentials: spec.credentials.clone(),
        limits: child_limits(&spec.limits),
        cgroup_procs: spec.cgroup_procs,
        close_fds: !spec.keep_inherited_fds,
    };
    // SAFETY: the hook runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: `ChildSetup::apply` makes only
    // raw syscalls on data prepared before the fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            setup.apply()?;
            match &mut setup.pid_exec {
                Some(exec) => Err(exec.exec()),
                None => Ok(()),
            }
        });
    }
    let child = cmd.spawn().map_err(error)?;
    // Dropping `Child` neither waits nor kills: our reaper collects it.
    Ok(child.id() as i32)
}

/// What the child does to itself between fork and exec, prepared before
/// the fork so that `apply` needs no allocation.
struct ChildSetup {
    pid_exec: Option<PidExec>,
    new_group: bool,
    take_terminal: bool,
    new_session: bool,
    controlling_tty: bool,
    credentials: Option<Credentials>,
    limits: Vec<(i32, u64, u64)>,
    cgroup_procs: Vec<RawFd>,
    close_fds: bool,
}

/// The `RLIMIT_NOFILE` tend was started with, before `raise_nofile_limit`.
static ORIGINAL_NOFILE: OnceLock<(u64, u64)> = OnceLock::new();

/// Raises tend's own `RLIMIT_NOFILE` soft limit to the hard one, so a busy
/// PID 1 does not run out of descriptors; children get the original soft
/// limit back (many programs break with a huge one: `select()` stops at
/// 1024), as systemd does. Call once at start, before spawning anything.
pub fn raise_nofile_limit() -> io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })?;
    let _ = ORIGINAL_NOFILE.set((limit.rlim_cur, limit.rlim_max));
    if limit.rlim_cur == limit.rlim_max {
        return Ok(());
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads the struct we own.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) })
}

/// The limits a child gets: the original `RLIMIT_NOFILE` soft limit first
/// (its hard limit is unchanged), then the unit's own, which win.
fn child_limits(unit: &[(i32, u64, u64)]) -> Vec<(i32, u64, u64)> {
    let nofile = libc::RLIMIT_NOFILE as i32;
    let mut limits = Vec::with_capacity(unit.len() + 1);
    if let Some(&(soft, hard)) = ORIGINAL_NOFILE.get() {
        if !unit.iter().any(|&(r, _, _)| r == nofile) {
            limits.push((nofile, soft, hard));
        }
    }
    limits.extend_from_slice(unit);
    limits
}

impl ChildSetup {
    /// Runs in the child between fork and exec. Async-signal-safe only.
    fn apply(&self) -> io::Result<()> {
        // SAFETY: (for the block) plain syscalls on integers, on memory
        // owned by `self` (alive until exec), and on stack data.
        unsafe {
            for &fd in &self.cgroup_procs {
                check(libc::write(fd, b"0".as_ptr().cast(), 1) as i32)?;
            }
            if self.new_session {
                check(libc::setsid())?;
                if self.controlling_tty {
                    // A session leader without a terminal takes its stdin's
                    // (0: never steal it from another session).
                    check(libc::ioctl(0, libc::TIOCSCTTY, 0))?;
                }
            }
            let foreground = libc::tcgetpgrp(0);
            let ours = libc::getpgrp();
            if self.new_group && !self.new_session {
                libc::setpgid(0, 0);
            }
            if self.new_group && self.take_terminal && foreground >= 0 && foreground == ours {
                // A background group may not change the foreground without
                // ignoring SIGTTOU first; dispositions are reset just below.
                set_disposition(libc::SIGTTOU, libc::SIG_IGN);
                libc::tcsetpgrp(0, libc::getpid());
            }
            for &(resource, soft, hard) in &self.limits {
                let limit = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                check(libc::setrlimit(resource as _, &limit))?;
            }
            if let Some(c) = &self.credentials {
                // Groups first: once the uid changes, they can't be set.
                check(libc::setgroups(c.groups.len(), c.groups.as_ptr()))?;
                check(libc::setgid(c.gid))?;
                check(libc::setuid(c.uid))?;
            }
            if self.close_fds {
                close_inherited_fds();
            }
            // Dispositions before the mask: a signal unblocked while tend's
            // handler is still installed would run it here, in the child.
            for sig in 1..=libc::SIGRTMAX() {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    set_default_disposition(sig);
                }
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            check(libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()))?;
        }
        Ok(())
    }
}

/// Marks every descriptor from 3 up close-on-exec, so the program starts
/// with 0, 1 and 2 only. Marked, not closed: std still needs its own
/// close-on-exec pipe to report a failed exec. Async-signal-safe.
///
/// # Safety
/// Plain syscalls on integers.
unsafe fn close_inherited_fds() {
    let all = libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
    if all == 0 {
        return;
    }
    // Before Linux 5.11: one fcntl per possible descriptor below the limit.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    let top = limit.rlim_cur.min(1 << 20) as i32;
    for fd in 3..top {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

/// What std's own exec would do (`execvp` with the command's whole
/// environment), prepared before the fork, with room for one more
/// variable that the child sets to its own pid.
struct PidExec {
    program: CString,
    /// Owns what `argv_ptrs` and `env_ptrs` point into.
    _strings: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
    /// `NAME=` then room for the digits and the NUL.
    pid_entry: Vec<u8>,
    name_len: usize,
}

// SAFETY: the raw pointers point into heap buffers owned by the same value
// (`_strings`, `pid_entry`), which never move nor change after `new`; the
// value is used only in the forked child, by one thread.
unsafe impl Send for PidExec {}
// SAFETY: as for Send: nothing is shared mutably before the fork.
unsafe impl Sync for PidExec {}

impl PidExec {
    fn new(argv: &[OsString], env: &[(OsString, OsString)], pid_name: &str) -> io::Result<PidExec> {
        use std::os::unix::ffi::OsStrExt;
        let c = |bytes: &[u8]| CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
        // tend's own environment, then the command's variables over it, as
        // std would; the pid variable last, over both.
        let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        for (key, value) in env {
            vars.retain(|(k, _)| k != key);
            vars.push((key.clone(), value.clone()));
        }
        vars.retain(|(k, _)| k.as_bytes() != pid_name.as_bytes());
        let argv: Vec<CString> = argv.iter().map(|a| c(a.as_bytes())).collect::<Result<_, _>>()?;
        let program = argv.first().cloned().unwrap_or_default();
        let mut env: Vec<CString> = Vec::with_capacity(vars.len());
        for (key, value) in &vars {
            env.push(c(&[key.as_bytes(), b"=", value.as_bytes()].concat())?);
        }
        let mut pid_entry = format!("{pid_name}=").into_bytes();
        let name_len = pid_entry.len();
        pid_entry.resize(name_len.saturating_add(24), 0);
        let mut argv_ptrs: Vec<_> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut env_ptrs: Vec<_> = env.iter().map(|e| e.as_ptr()).collect();
        env_ptrs.push(pid_entry.as_ptr().cast());
        env_ptrs.push(std::ptr::null());
        let mut strings = argv;
        strings.extend(env);
        Ok(PidExec {
            program,
            _strings: strings,
            argv_ptrs,
            env_ptrs,
            pid_entry,
            name_len,
        })
    }

    /// In the child: writes its pid into the entry and execs; returns only
    /// the error of a failed exec. Async-signal-safe, no allocation.
    fn exec(&mut self) -> io::Error {
        // SAFETY: getpid has no preconditions.
        let mut pid = unsafe { libc::getpid() }.unsigned_abs();
        let mut digits = [0u8; 10];
        let mut n = 0;
        while n == 0 || pid > 0 {
            if let Some(d) = digits.get_mut(n) {
                *d = b'0'.saturating_add((pid % 10) as u8);
            }
            pid /= 10;
            n = n.saturating_add(1);
        }
        let tail = self.pid_entry.get_mut(self.name_len..).unwrap_or_default();
        for (slot, digit) in tail.iter_mut().zip(digits.iter().take(n).rev()) {
            *slot = *digit;
        }
        if let Some(end) = tail.get_mut(n) {
            *end = 0;
        }
        extern "C" {
            static mut environ: *const *const libc::c_char;
        }
        // SAFETY: in the forked child, single-threaded: `environ` is ours to
        // set, and execvp reads PATH from it, as std's own exec does. The
        // pointer arrays are NUL-terminated and point into live buffers.
        unsafe {
            environ = self.env_ptrs.as_ptr();
            libc::execvp(self.program.as_ptr(), self.argv_ptrs.as_ptr());
        }
        io::Error::last_os_error()
    }
}

fn check(rc: i32) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// # Safety
/// Async-signal-safe; `handler` must be `SIG_DFL` or `SIG_IGN`.
unsafe fn set_disposition(sig: i32, handler: libc::sighandler_t) {
    let mut action: libc::sigaction = std::mem::zeroed();
    action.sa_sigaction = handler;
    libc::sigaction(sig, &action, std::ptr::null_mut());
}

/// Resets `sig` to its default action through the raw syscall: libc's
/// `sigaction` refuses the signals it keeps for itself (32 and 33 with
/// glibc), which a launcher may still have left ignored.
///
/// # Safety
/// Async-signal-safe.
unsafe fn set_default_disposition(sig: i32) {
    // All zeros is SIG_DFL, no flags and an empty mask in the kernel's
    // `struct sigaction` of every architecture (larger than any of them).
    let action = [0u64; 8];
    let sigset_size = (libc::SIGRTMAX() as usize + 1) / 8;
    libc::syscall(
        libc::SYS_rt_sigaction,
        sig,
        action.as_ptr(),
        std::ptr::null_mut::<u64>(),
        sigset_size,
    );
}

/// `/dev/null` opened for a child's standard stream; `None` where the
/// environment has no /dev/null yet (the stream is then inherited).
pub fn dev_null() -> Option<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .ok()
        .map(OwnedFd::from)
}
