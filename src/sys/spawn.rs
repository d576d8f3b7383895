//! The spawner: the one place where tend forks and execs.
//!
//! std's `Command` does the fork, the exec and the report of exec errors
//! through a close-on-exec pipe, and empties the signal mask in the child.
//! The `pre_exec` hook adds what a PID 1 owes its children: default signal
//! dispositions (ignored signals would otherwise stay ignored across exec),
//! a process group of their own, and the terminal's foreground.

use std::ffi::OsString;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

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
    /// Run as this user and group, with these supplementary groups.
    pub credentials: Option<Credentials>,
    /// Resource limits to set: (resource, soft, hard).
    pub limits: Vec<(i32, u64, u64)>,
    /// Where the standard streams go; `None` inherits tend's.
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// An open `cgroup.procs` the child writes itself into before exec, so
    /// it never runs outside its cgroup (not even to fork).
    pub cgroup_procs: Option<RawFd>,
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
#[error("cannot execute {program}: {}", super::describe(.source))]
pub struct SpawnError {
    pub program: String,
    pub source: io::Error,
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
    let setup = ChildSetup {
        new_group: spec.new_group,
        take_terminal: spec.take_terminal,
        new_session: spec.new_session,
        controlling_tty: spec.controlling_tty,
        credentials: spec.credentials.clone(),
        limits: spec.limits.clone(),
        cgroup_procs: spec.cgroup_procs,
    };
    // SAFETY: the hook runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: `ChildSetup::apply` makes only
    // raw syscalls on data prepared before the fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || setup.apply());
    }
    let child = cmd.spawn().map_err(error)?;
    // Dropping `Child` neither waits nor kills: our reaper collects it.
    Ok(child.id() as i32)
}

/// What the child does to itself between fork and exec, prepared before
/// the fork so that `apply` needs no allocation.
struct ChildSetup {
    new_group: bool,
    take_terminal: bool,
    new_session: bool,
    controlling_tty: bool,
    credentials: Option<Credentials>,
    limits: Vec<(i32, u64, u64)>,
    cgroup_procs: Option<RawFd>,
}

impl ChildSetup {
    /// Runs in the child between fork and exec. Async-signal-safe only.
    fn apply(&self) -> io::Result<()> {
        // SAFETY: (for the block) plain syscalls on integers, on memory
        // owned by `self` (alive until exec), and on stack data.
        unsafe {
            if let Some(fd) = self.cgroup_procs {
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
            for sig in 1..=libc::SIGRTMAX() {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    set_disposition(sig, libc::SIG_DFL);
                }
            }
        }
        Ok(())
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
