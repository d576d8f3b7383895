//! `tend ctl COMMAND` (and `tendctl`): one request, its replies printed as
//! text (one line per service) or as JSON, and an exit code after systemctl.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::args::{CtlArgs, CtlCommand};
use super::client::{self, Client, ClientError};
use super::protocol::{code, Body, Exec, Op, Reply, Request, ServiceInfo, ServiceState};
use super::tty;

/// Runs the command; the exit code. Failures print one line on stderr.
pub fn run(args: &CtlArgs) -> i32 {
    let path = match (&args.to.socket, args.to.pid, &args.to.machine) {
        (Some(path), _, _) => path.clone(),
        (None, Some(pid), _) => client::socket_of_pid(pid),
        (None, None, Some(name)) if !crate::registry::valid_name(name) => {
            eprintln!("tend ctl: invalid machine name {name:?} (tend list shows the machines)");
            return code::BAD_REQUEST;
        }
        (None, None, Some(name)) => crate::registry::socket_path(&crate::registry::dir(), name),
        // The same place `tend init` chose.
        (None, None, None) => match super::socket_path::resolve(false) {
            Ok(path) => path,
            Err(e) => {
                eprintln!("tend ctl: {e}");
                return code::FAILED;
            }
        },
    };
    let result = Client::connect(&path).and_then(|mut c| dispatch(&mut c, args));
    match result {
        Ok(code) => code,
        Err(e) => {
            if let (true, ClientError::Refused { code, message }) = (args.to.json, &e) {
                // tend's error reply is a reply too: JSON on stdout as the
                // others are, and the line on stderr for a person.
                print_json(&Reply::error(*code, message.clone()));
            }
            let _ = std::io::stdout().flush();
            eprintln!("tend ctl: {e}");
            e.code()
        }
    }
}

fn dispatch(c: &mut Client, args: &CtlArgs) -> Result<i32, ClientError> {
    let json = args.to.json;
    let op = match &args.command {
        CtlCommand::Status(s) => return status(c, &s.names, json),
        CtlCommand::Exec {
            tty: true,
            user,
            env,
            cwd,
            command,
        } => return tty::exec(c, exec_request(user, env, cwd, command, true)),
        CtlCommand::Exec {
            user,
            env,
            cwd,
            command,
            ..
        } => return exec(c, exec_request(user, env, cwd, command, false), json),
        CtlCommand::Logs { name, lines, follow } => Op::Logs {
            name: name.clone(),
            lines: *lines,
            follow: *follow,
        },
        CtlCommand::Events => Op::Events {},
        CtlCommand::Start { name, no_block } => Op::Start {
            name: name.clone(),
            no_block: *no_block,
        },
        CtlCommand::Stop { name, no_block } => Op::Stop {
            name: name.clone(),
            no_block: *no_block,
        },
        CtlCommand::Restart { name, no_block } => Op::Restart {
            name: name.clone(),
            no_block: *no_block,
        },
        CtlCommand::Signal { name, signal } => Op::Signal {
            name: name.clone(),
            signal: signal.clone(),
        },
        CtlCommand::Reload => Op::Reload {},
        CtlCommand::Shutdown { no_block } => {
            single(c, Op::Shutdown {}, json)?;
            if !no_block {
                // tend closes the connection as it exits.
                while c.recv()?.is_some() {}
            }
            return Ok(0);
        }
        CtlCommand::Wait { names, state, timeout } => Op::Wait {
            names: names.clone(),
            state: *state,
            timeout_ms: timeout.map(|t| t.as_millis() as u64),
        },
        CtlCommand::Health => return health(c, json),
        CtlCommand::Version => Op::Version {},
        CtlCommand::Ping => Op::Ping {},
    };
    let streams = matches!(op, Op::Logs { .. } | Op::Events {});
    if streams {
        return stream(c, op, json);
    }
    single(c, op, json)?;
    Ok(0)
}

/// One request, one reply, printed.
fn single(c: &mut Client, op: Op, json: bool) -> Result<(), ClientError> {
    let reply = c.call(&Request::new(op))?;
    if json {
        print_json(&reply);
        return Ok(());
    }
    match reply.body {
        Body::Pong => println!("pong"),
        Body::Version { version, protocol } => println!("tend {version} (protocol {protocol})"),
        Body::Done { message: Some(m) } => println!("{m}"),
        _ => {}
    }
    Ok(())
}

fn status(c: &mut Client, names: &[String], json: bool) -> Result<i32, ClientError> {
    let up = |s: &ServiceInfo| matches!(s.state, ServiceState::Running | ServiceState::Ready);
    let (out, down) = match json {
        true => {
            let services = c.status(names)?;
            let down = !services.iter().all(up);
            // One reply, as tend sends it unbatched.
            (Reply::ok(Body::Status { services, more: false }).to_line(), down)
        }
        false => {
            // Each batch written as it comes, while tend reads the next;
            // only the names, padded to the longest, wait for the last.
            let (mut rows, mut rest, mut down) = (Vec::new(), String::new(), false);
            c.status_batches(names, &mut |batch| {
                for s in batch {
                    down |= !up(&s);
                    let at = rest.len();
                    write_status_rest(&mut rest, &s);
                    rows.push((s.name, at..rest.len()));
                }
            })?;
            let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
            let mut out = String::with_capacity(rest.len() + rows.len().saturating_mul(width + 3));
            for (name, part) in rows {
                write_name(&mut out, &name, width);
                out.push_str(rest.get(part).unwrap_or_default());
                out.push('\n');
            }
            (out.into_bytes(), down)
        }
    };
    let _ = std::io::stdout().write_all(&out);
    // As systemctl: naming a service that is not up is exit code 3.
    Ok(if !names.is_empty() && down {
        code::NOT_RUNNING
    } else {
        0
    })
}

/// `web  ready  pid 42  up 3m 2s  restarts 1  last exited with code 1  healthy  (detail)`.
pub fn status_line(s: &ServiceInfo, width: usize) -> String {
    let mut line = String::with_capacity(128);
    write_status_line(&mut line, s, width);
    line
}

/// [`status_line`], written at the end of `out`: one buffer for all
/// the lines of a status, no string made for each part of each line.
fn write_status_line(out: &mut String, s: &ServiceInfo, width: usize) {
    write_name(out, &s.name, width);
    write_status_rest(out, s);
}

/// A status line's name, padded to `width`, and the gap after it.
fn write_name(out: &mut String, name: &str, width: usize) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = write!(out, "{name:width$}  ");
}

/// A status line after its name.
fn write_status_rest(out: &mut String, s: &ServiceInfo) {
    use std::fmt::Write as _;
    let _ = write!(out, "{:<8}  ", s.state);
    let at = out.len();
    match s.pid {
        Some(pid) => _ = write!(out, "pid {pid}"),
        None => out.push('-'),
    }
    pad_from(out, at, 9);
    out.push_str("  for ");
    let at = out.len();
    let _ = write!(
        out,
        "{}",
        humantime::format_duration(Duration::from_secs(s.since_ms / 1000))
    );
    pad_from(out, at, 9);
    let _ = write!(out, "  restarts {}", s.restarts);
    if let Some(exit) = &s.last_exit {
        let _ = write!(out, "  last {exit}");
    }
    if let Some(text) = &s.status_text {
        let _ = write!(out, "  \"{text}\"");
    }
    if let Some(health) = &s.health {
        let _ = write!(out, "  {health}");
    }
    if let Some(detail) = &s.detail {
        let _ = write!(out, "  ({detail})");
    }
    if let Some(ms) = s.next_run_ms {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(ms);
        let _ = write!(out, "  next run {}", humantime::format_rfc3339_seconds(at));
    }
    if s.oom_kills > 0 {
        let _ = write!(out, "  oom-killed {}", s.oom_kills);
    }
    // Memory, CPU time and tasks, each where its cgroup tells.
    if let Some(bytes) = s.memory_bytes {
        let _ = write!(out, "  memory {}", crate::resources::show_used(bytes));
    }
    if let Some(usec) = s.cpu_usec {
        let _ = write!(out, "  cpu {:.3}s", usec as f64 / 1e6);
    }
    if let Some(tasks) = s.tasks {
        let _ = write!(out, "  tasks {tasks}");
    }
}

/// Pads what `out` holds after byte `at` with spaces to `width`
/// characters, as `{:<width$}` would.
fn pad_from(out: &mut String, at: usize, width: usize) {
    let written = out.get(at..).map_or(0, |s| s.chars().count());
    out.extend(std::iter::repeat(' ').take(width.saturating_sub(written)));
}

/// `2026-11-30T09:58:03.123Z  web  stopping -> exited    -  last killed by SIGTERM  (stopped)`.
pub fn event_line(s: &ServiceInfo, from: Option<ServiceState>, at_ms: u64, removed: bool, width: usize) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(at_ms);
    let from = from.map_or_else(|| "-".to_string(), |f| f.to_string());
    let to = match removed {
        true => "removed".to_string(),
        false => s.state.to_string(),
    };
    let pid = s.pid.map(|p| format!("pid {p}")).unwrap_or_else(|| "-".into());
    let mut line = format!(
        "{}  {:width$}  {from:>8} -> {to:<8}  {pid:<9}",
        humantime::format_rfc3339_millis(at),
        s.name
    );
    if let Some(exit) = &s.last_exit {
        line.push_str(&format!("  last {exit}"));
    }
    if let Some(health) = &s.health {
        line.push_str(&format!("  {health}"));
    }
    if let Some(detail) = &s.detail {
        line.push_str(&format!("  ({detail})"));
    }
    line.trim_end().to_string()
}

fn health(c: &mut Client, json: bool) -> Result<i32, ClientError> {
    let reply = c.call(&Request::new(Op::Health {}))?;
    if json {
        print_json(&reply);
    }
    match reply.body {
        Body::Health { healthy: true, .. } => {
            if !json {
                println!("healthy");
            }
            Ok(0)
        }
        Body::Health { reasons, .. } => {
            if !json {
                eprintln!("tend ctl: unhealthy: {}", reasons.join("; "));
            }
            Ok(code::FAILED)
        }
        _ => Err(ClientError::Protocol("expected a health reply".into())),
    }
}

/// `logs` and `events`: replies until the end (or forever when following).
fn stream(c: &mut Client, op: Op, json: bool) -> Result<i32, ClientError> {
    // Event lines align on the longest name known when the stream starts.
    let mut width = 0;
    if matches!(op, Op::Events {}) && !json {
        width = c.status(&[])?.iter().map(|s| s.name.len()).max().unwrap_or(0);
    }
    c.send(&Request::new(op), &[])?;
    let mut stdout = std::io::stdout();
    loop {
        let reply = c.reply()?;
        if json {
            print_json(&reply);
        } else {
            match &reply.body {
                Body::Log { line } => {
                    let _ = writeln!(stdout, "{line}");
                }
                Body::Event {
                    service,
                    from,
                    at_ms,
                    removed,
                } => {
                    width = width.max(service.name.len());
                    let _ = writeln!(stdout, "{}", event_line(service, *from, *at_ms, *removed, width));
                }
                _ => {}
            }
        }
        let _ = stdout.flush();
        if matches!(reply.body, Body::End) {
            return Ok(0);
        }
    }
}

fn exec_request(user: &Option<String>, env: &[String], cwd: &Option<String>, command: &[String], tty: bool) -> Exec {
    Exec {
        argv: command.to_vec(),
        user: user.clone(),
        env: env.to_vec(),
        cwd: cwd.clone(),
        tty,
        size: None,
    }
}

/// `exec` without a terminal: our stdin, stdout, stderr go to tend.
fn exec(c: &mut Client, request: Exec, json: bool) -> Result<i32, ClientError> {
    let fds = [
        std::io::stdin().as_raw_fd(),
        std::io::stdout().as_raw_fd(),
        std::io::stderr().as_raw_fd(),
    ];
    c.send(&Request::new(Op::Exec(request)), &fds)?;
    let mut forward = Forward::new(c);
    loop {
        if let Some(f) = &mut forward {
            f.wait(c)?;
        }
        let reply = c.reply()?;
        if json {
            print_json(&reply);
        }
        if let Body::Exited { code } = reply.body {
            return Ok(code);
        }
    }
}

/// Ctrl-C and the other signals a user or a script sends to this client
/// go on to the command, as with `docker exec`: caught, and sent as `kill`
/// while the client waits for its next reply (one thread, no other).
struct Forward {
    poll: mio::Poll,
    signals: signal_hook_mio::v1_0::Signals,
}

impl Forward {
    const STREAM: mio::Token = mio::Token(0);
    const SIGNALS: mio::Token = mio::Token(1);

    /// `None` if the signals cannot be caught: the command still runs.
    fn new(c: &Client) -> Option<Forward> {
        use signal_hook::consts::*;
        let poll = mio::Poll::new().ok()?;
        let mut signals =
            signal_hook_mio::v1_0::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2]).ok()?;
        let registry = poll.registry();
        registry
            .register(&mut signals, Self::SIGNALS, mio::Interest::READABLE)
            .ok()?;
        let stream = c.raw_fd();
        registry
            .register(&mut mio::unix::SourceFd(&stream), Self::STREAM, mio::Interest::READABLE)
            .ok()?;
        Some(Forward { poll, signals })
    }

    /// Forwards signals until a reply can be read (at once if a whole one
    /// is held already).
    fn wait(&mut self, c: &mut Client) -> Result<(), ClientError> {
        let mut events = mio::Events::with_capacity(2);
        while !c.buffered() {
            match self.poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            for signal in self.signals.pending() {
                // A connection gone shows in the reply read next.
                let _ = c.send(
                    &Request::new(Op::Kill {
                        signal: signal.to_string(),
                    }),
                    &[],
                );
            }
            if events.iter().any(|e| e.token() == Self::STREAM) {
                return Ok(());
            }
        }
        Ok(())
    }
}

pub fn print_json(reply: &Reply) {
    let _ = std::io::stdout().write_all(&reply.to_line());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> ServiceInfo {
        ServiceInfo {
            name: name.into(),
            state: ServiceState::Ready,
            pid: Some(42),
            since_ms: 182_500,
            restarts: 1,
            last_exit: None,
            status_text: None,
            detail: None,
            next_run_ms: None,
            health: None,
            oom_kills: 0,
            memory_bytes: None,
            cpu_usec: None,
            tasks: None,
        }
    }

    #[test]
    fn status_lines_read_as_documented() {
        let plain = info("web");
        assert_eq!(
            status_line(&plain, 6),
            "web     ready     pid 42     for 3m 2s      restarts 1"
        );
        let full = ServiceInfo {
            state: ServiceState::Failed,
            pid: None,
            since_ms: 999,
            restarts: 12,
            last_exit: Some("killed by the OOM killer (memory-max 64M)".into()),
            status_text: Some("serving".into()),
            health: Some(crate::supervisor::Health::Unhealthy),
            detail: Some("start limit reached".into()),
            next_run_ms: Some(1_764_496_683_000),
            oom_kills: 2,
            memory_bytes: Some(13_107_200),
            cpu_usec: Some(1_234_567),
            tasks: Some(3),
            ..info("a-very-long-name")
        };
        assert_eq!(
            status_line(&full, 3),
            "a-very-long-name  failed    -          for 0s         restarts 12  \
             last killed by the OOM killer (memory-max 64M)  \"serving\"  unhealthy  \
             (start limit reached)  next run 2025-11-30T09:58:03Z  oom-killed 2  \
             memory 12.5M  cpu 1.235s  tasks 3"
        );
        let long_pid = ServiceInfo {
            pid: Some(4_194_304),
            since_ms: 90_061_000,
            memory_bytes: Some(0),
            cpu_usec: Some(0),
            tasks: Some(0),
            ..info("x")
        };
        assert_eq!(
            status_line(&long_pid, 1),
            "x  ready     pid 4194304  for 1day 1h 1m 1s  restarts 1  memory 0.0M  cpu 0.000s  tasks 0"
        );
    }
}
