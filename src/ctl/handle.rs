//! Turning one request into replies, and moving the tasks of waiting
//! connections on after each change of state. Talks to the loop only
//! through [`Host`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::exec;
use super::protocol::{code, Body, Op, Reply};
use super::task::{self, Host, Outcome, Task};
use crate::supervisor::{Event, ServiceStatus};

/// Answers `op`, or sets the connection's task to answer later. Returns the
/// pid of a command started by `exec`.
pub fn handle(conn: &mut Conn, op: Op, host: &mut dyn Host, now: Instant) -> Option<i32> {
    match op {
        Op::Ping {} => conn.send(&Reply::ok(Body::Pong)),
        Op::Version {} => conn.send(&Reply::ok(Body::Version {
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: super::protocol::VERSION,
        })),
        Op::Status { names } => status(conn, &host.status(), &names, now),
        Op::Start { name, no_block } => operate(
            conn,
            host,
            Event::Start { name: name.clone() },
            no_block,
            Task::Start { name },
        ),
        Op::Restart { name, no_block } => operate(
            conn,
            host,
            Event::Restart { name: name.clone() },
            no_block,
            Task::Start { name },
        ),
        Op::Stop { name, no_block } => operate(
            conn,
            host,
            Event::Stop { name: name.clone() },
            no_block,
            Task::Stop { name },
        ),
        Op::Signal { name, signal } => send_signal(conn, host, &name, &signal),
        Op::Logs { name, lines, follow } => logs(conn, host, name, lines, follow),
        Op::Reload {} => {
            host.reload();
            answer(conn, Ok(None));
        }
        Op::Shutdown {} => match host.request(Event::Shutdown) {
            Ok(()) => {
                answer(conn, Ok(None));
                conn.task = Task::Shutdown;
            }
            Err(e) => answer(conn, Err(task::refused(&e))),
        },
        Op::Wait {
            names,
            state,
            timeout_ms,
        } => {
            let deadline = timeout_ms.and_then(|ms| now.checked_add(Duration::from_millis(ms)));
            conn.task = Task::Wait { names, state, deadline };
        }
        Op::Health {} => {
            let reasons = task::health(&host.status());
            let healthy = reasons.is_empty();
            let mut reply = Reply::ok(Body::Health { healthy, reasons });
            reply.ok = healthy;
            conn.send(&reply);
        }
        Op::Events {} => {
            // Every service's current state first, then the changes.
            let mut last = BTreeMap::new();
            for reply in events(&mut last, &host.status(), now) {
                conn.send(&reply);
            }
            conn.task = Task::Events { last };
        }
        Op::Exec(request) => return exec::start(conn, request),
        Op::Kill { .. } => answer(conn, Err((code::BAD_REQUEST, "kill is for a running exec".into()))),
    }
    None
}

fn status(conn: &mut Conn, all: &[ServiceStatus], names: &[String], now: Instant) {
    if let Some(missing) = names.iter().find(|n| !all.iter().any(|s| &s.name == *n)) {
        return answer(conn, Err(task::no_such_unit(missing)));
    }
    let services = all
        .iter()
        .filter(|s| names.is_empty() || names.contains(&s.name))
        .map(|s| task::info(s, now))
        .collect();
    conn.send(&Reply::ok(Body::Status { services }));
}

fn operate(conn: &mut Conn, host: &mut dyn Host, event: Event, no_block: bool, then: Task) {
    match host.request(event) {
        Err(e) => answer(conn, Err(task::refused(&e))),
        Ok(()) if no_block => answer(conn, Ok(None)),
        Ok(()) => conn.task = then,
    }
}

fn send_signal(conn: &mut Conn, host: &mut dyn Host, name: &str, signal: &str) {
    let Some(number) = crate::signal::parse(signal) else {
        return answer(conn, Err((code::BAD_REQUEST, format!("unknown signal {signal:?}"))));
    };
    match host.status().into_iter().find(|s| s.name == name) {
        None => answer(conn, Err(task::no_such_unit(name))),
        Some(s) if s.pid.is_none() => answer(conn, Err((code::NOT_RUNNING, format!("{name} is not running")))),
        Some(_) => {
            host.signal(name, number);
            answer(conn, Ok(None));
        }
    }
}

fn logs(conn: &mut Conn, host: &dyn Host, name: Option<String>, lines: Option<usize>, follow: bool) {
    let Some(name) = name else {
        return own_log(conn, host, lines, follow);
    };
    if !host.status().iter().any(|s| s.name == name) {
        return answer(conn, Err(task::no_such_unit(&name)));
    }
    let mut seen = 0;
    if let Some(ring) = host.ring(&name) {
        for line in ring.tail(lines.unwrap_or(usize::MAX)) {
            conn.send(&Reply::ok(Body::Log { line: line.clone() }));
        }
        seen = ring.total();
    }
    match follow {
        true => conn.task = Task::Follow { name, seen },
        false => conn.send(&Reply::ok(Body::End)),
    }
}

/// tend's own log, where it keeps one (a detached machine's PID 1).
fn own_log(conn: &mut Conn, host: &dyn Host, lines: Option<usize>, follow: bool) {
    let refuse = |why: &str| (code::BAD_REQUEST, why.to_string());
    let outcome = match host.own_log(lines.unwrap_or(usize::MAX)) {
        _ if follow => Err(refuse("--follow needs a service name")),
        None => Err(refuse("tend keeps no log of its own here: it writes to its stderr")),
        Some(Err(e)) => Err((
            code::FAILED,
            format!("cannot read tend's own log: {}", crate::sys::describe(&e)),
        )),
        Some(Ok(all)) => Ok(all),
    };
    match outcome {
        Ok(all) => {
            for line in all {
                conn.send(&Reply::ok(Body::Log { line }));
            }
            conn.send(&Reply::ok(Body::End));
        }
        Err(e) => answer(conn, Err(e)),
    }
}

/// Sends `done` or an error.
pub fn answer(conn: &mut Conn, outcome: Outcome) {
    match outcome {
        Ok(message) => conn.send(&Reply::ok(Body::Done { message })),
        Err((code, message)) => conn.send(&Reply::error(code, message)),
    }
}

fn shown(s: &ServiceStatus) -> String {
    format!("{} {:?} {:?}", s.state, s.pid, s.detail)
}

/// Moves a waiting connection on; `status` is computed once per round by
/// the caller, only when some task needs it.
pub fn progress(conn: &mut Conn, status: Option<&[ServiceStatus]>, host: &dyn Host, now: Instant) {
    let find = |name: &str| status.and_then(|all| all.iter().find(|s| s.name == name));
    let outcome = match &mut conn.task {
        Task::Start { name } => match find(name) {
            None => Some(Err(task::no_such_unit(name))),
            Some(s) => task::start_result(s),
        },
        Task::Stop { name } => match find(name) {
            // Removed by a reload: down for good.
            None => Some(Ok(None)),
            Some(s) => task::stop_result(s),
        },
        Task::Wait { names, state, deadline } => {
            let result = status.and_then(|all| task::wait_result(all, names, *state));
            match deadline {
                Some(at) if result.is_none() && *at <= now => Some(Err((
                    code::NOT_RUNNING,
                    format!("timed out waiting for {}", names.join(", ")),
                ))),
                _ => result,
            }
        }
        Task::Follow { .. } | Task::Events { .. } | Task::Exec { .. } | Task::Shutdown | Task::Idle => None,
    };
    if let Task::Follow { name, seen } = &mut conn.task {
        let mut replies = Vec::new();
        follow(&mut replies, name, seen, host);
        for reply in replies {
            conn.send(&reply);
        }
    }
    if let (Task::Events { last }, Some(all)) = (&mut conn.task, status) {
        for reply in events(last, all, now) {
            conn.send(&reply);
        }
    }
    if let Some(outcome) = outcome {
        conn.task = Task::Idle;
        answer(conn, outcome);
    }
}

/// New captured lines of a followed service.
fn follow(out: &mut Vec<Reply>, name: &str, seen: &mut u64, host: &dyn Host) {
    let Some(ring) = host.ring(name) else {
        return;
    };
    let new = ring.total().saturating_sub(*seen);
    if new > 0 {
        for line in ring.tail(usize::try_from(new).unwrap_or(usize::MAX)) {
            out.push(Reply::ok(Body::Log { line: line.clone() }));
        }
        *seen = ring.total();
    }
}

/// State changes since `last`, which is brought up to date.
fn events(last: &mut BTreeMap<String, String>, all: &[ServiceStatus], now: Instant) -> Vec<Reply> {
    let mut replies = Vec::new();
    for s in all {
        let now_shown = shown(s);
        if last.get(&s.name) != Some(&now_shown) {
            replies.push(Reply::ok(Body::Event {
                service: task::info(s, now),
            }));
            last.insert(s.name.clone(), now_shown);
        }
    }
    last.retain(|name, _| all.iter().any(|s| &s.name == name));
    replies
}
