//! The event loop of `tend -- CMD`: spawn the command, then feed signals,
//! reaped children and deadlines to the `Entrypoint` machine and carry out
//! what it decides.

use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::Reactor;
use crate::entrypoint::{Action, Entrypoint, Event, Settings};
use crate::sys::{process, spawn};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot set up the event loop")]
    Reactor(#[source] std::io::Error),
    #[error(transparent)]
    Spawn(#[from] spawn::SpawnError),
    #[error("event loop failed")]
    Wait(#[source] std::io::Error),
}

/// Runs `argv` to completion and returns the exit code tend should exit with.
pub fn run(argv: &[OsString], cwd: Option<&Path>, settings: Settings, extra_signals: &[i32]) -> Result<i32, Error> {
    let mut signals = crate::signal::forwarded();
    signals.extend([libc::SIGCHLD, libc::SIGPWR, crate::signal::halt()]);
    signals.extend(extra_signals);
    let mut reactor = Reactor::signals_only(&signals).map_err(Error::Reactor)?;
    let spec = spawn::Spawn {
        argv,
        cwd,
        new_group: true,
        take_terminal: true,
        keep_inherited_fds: true,
        ..Default::default()
    };
    let child = spawn::spawn(spec)?;
    // spawn() refused an empty argv, so there is a program name.
    let program = argv.first().map(|p| p.to_string_lossy()).unwrap_or_default();
    info!("started {program} as pid {child}");
    let mut machine = Entrypoint::new(child, settings);
    crate::sys::memory::shed_startup();
    loop {
        let deadline = machine.next_deadline();
        let received = reactor.wait(deadline).map_err(Error::Wait)?.signals;
        let now = Instant::now();
        // Events go to the machine as they are read (a storm's wake-up
        // allocates nothing); those after its exit are not looked at.
        let mut exit = None;
        let mut feed = |event: Event| {
            if exit.is_none() {
                exit = handle(&mut machine, event, now, child, &program);
            }
        };
        for sig in received {
            if sig != libc::SIGCHLD {
                feed(Event::Signal(sig));
                continue;
            }
            let mut reaped = 0usize;
            let none_left = process::reap_each(&mut |pid, status| {
                reaped = reaped.saturating_add(1);
                feed(Event::Exited { pid, status });
            });
            if reaped > 0 {
                debug!("reaped {reaped} processes");
            }
            if none_left {
                feed(Event::NoChildren);
            }
        }
        if deadline.is_some_and(|d| now >= d) {
            feed(Event::Timer);
        }
        if let Some(code) = exit {
            return Ok(code);
        }
    }
}

/// Hands one event to the machine and carries out what it decides; the
/// exit code once it is time to exit.
fn handle(machine: &mut Entrypoint, event: Event, now: Instant, child: i32, program: &str) -> Option<i32> {
    if let Event::Exited { pid, status } = &event {
        if *pid == child {
            info!("{program} (pid {child}) {status}");
        }
    }
    machine.handle(event, now).into_iter().find_map(execute)
}

/// Carries out one action; returns the exit code when it is time to exit.
fn execute(action: Action) -> Option<i32> {
    match action {
        Action::Signal { pid, signal } => {
            info!("forwarding {} to {}", crate::signal::name(signal), target(pid));
            if let Err(e) = process::kill(pid, signal) {
                warn!("cannot forward {} to {}: {e}", crate::signal::name(signal), target(pid));
            }
        }
        Action::SignalStrays(signal) => signal_strays(signal),
        Action::Exit(code) => {
            info!("exiting with code {code}");
            return Some(code);
        }
    }
    None
}

fn target(pid: i32) -> String {
    if pid < 0 {
        format!("process group {}", pid.unsigned_abs())
    } else {
        format!("pid {pid}")
    }
}

/// Signals every process the child left behind. As PID 1 that is every
/// other process of the namespace (they die with us anyway); as a
/// subreaper, only our descendants.
fn signal_strays(signal: i32) {
    let own = std::process::id() as i32;
    let found = process::descendants(own);
    if let Ok(pids) = &found {
        if pids.is_empty() {
            return;
        }
        info!(
            "sending {} to {} remaining processes",
            crate::signal::name(signal),
            pids.len()
        );
    }
    let result = match (own, found) {
        (1, _) => process::kill(-1, signal),
        (_, Ok(pids)) => pids.iter().try_for_each(|&pid| process::kill(pid, signal)),
        (_, Err(e)) => Err(e),
    };
    if let Err(e) = result {
        warn!("cannot stop remaining processes: {e}");
    }
}
