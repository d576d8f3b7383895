//! The spawner: the one place where tend forks and execs.
//!
//! std's `Command` does the fork, the exec and the report of exec errors
//! through a close-on-exec pipe, and empties the signal mask in the child.
//! The `pre_exec` hook adds what a PID 1 owes its children: default signal
//! dispositions (ignored signals would otherwise stay ignored across exec),
//! a process group of their own, and the terminal's foreground.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

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
}

/// The command could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot execute {program}: {}", describe(.source))]
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

/// The OS's text for an error, without std's "(os error N)" suffix.
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

/// Starts the command and returns its pid. The caller reaps it.
pub fn spawn(spec: &Spawn) -> Result<i32, SpawnError> {
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
    let (new_group, take_terminal) = (spec.new_group, spec.take_terminal);
    // SAFETY: the hook runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: it makes only raw syscalls
    // (setpgid, tcgetpgrp, tcsetpgrp, sigaction) on stack data, and
    // allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            child_setup(new_group, take_terminal);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(error)?;
    // Dropping `Child` neither waits nor kills: our reaper collects it.
    Ok(child.id() as i32)
}

/// Runs in the child between fork and exec. Async-signal-safe only.
fn child_setup(new_group: bool, take_terminal: bool) {
    // SAFETY (for the block): plain syscalls on integers and on a zeroed
    // sigaction on our stack.
    unsafe {
        let foreground = libc::tcgetpgrp(0);
        let ours = libc::getpgrp();
        if new_group {
            libc::setpgid(0, 0);
        }
        if new_group && take_terminal && foreground >= 0 && foreground == ours {
            // A background group may not change the foreground without
            // ignoring SIGTTOU first; dispositions are reset just below.
            set_disposition(libc::SIGTTOU, libc::SIG_IGN);
            libc::tcsetpgrp(0, libc::getpid());
        }
        for sig in 1..=libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                set_disposition(sig, libc::SIG_DFL);
            }
        }
    }
}

/// # Safety
/// Async-signal-safe; `handler` must be `SIG_DFL` or `SIG_IGN`.
unsafe fn set_disposition(sig: i32, handler: libc::sighandler_t) {
    let mut action: libc::sigaction = std::mem::zeroed();
    action.sa_sigaction = handler;
    libc::sigaction(sig, &action, std::ptr::null_mut());
}
