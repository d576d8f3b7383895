//! Turning one request into replies, and moving the tasks of waiting
//! connections on after each change of state. Talks to the loop only
//! through [`Host`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::conn::Conn;
use super::exec;
use super::task::{self, Host, Outcome, Task};
use crate::ctl::protocol::{code, Body, Op, Reply};
use crate::supervisor::{Change, Event, ServiceState, ServiceStatus};
use crate::sys::cgroup::Usage;

/// Answers `op`, or sets the connection's task to answer later. Returns the
/// pid of a command started by `exec`.
pub fn handle(conn: &mut Conn, op: Op, host: &mut dyn Host, now: Instant) -> Option<i32> {
    match op {
        Op::Ping {} => conn.send(&Reply::ok(Body::Pong)),
        Op::Version {} => conn.send(&Reply::ok(Body::Version {
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: crate::ctl::protocol::VERSION,
        })),
        Op::Status { names, batched } => status(conn, host, &names, batched, now),
        Op::Start { name, no_block } => operate(conn, host, Event::Start { name: name.clone() }, no_block, name),
        Op::Restart { name, no_block } => operate(conn, host, Event::Restart { name: name.clone() }, no_block, name),
        Op::Stop { name, no_block } => operate(conn, host, Event::Stop { name: name.clone() }, no_block, name),
        Op::Signal { name, signal } => send_signal(conn, host, &name, &signal),
        Op::Logs { name, lines, follow } => logs(conn, host, name, lines, follow),
        Op::Reload {} => {
            let reloaded = host.reload().map(|()| None);
            answer(conn, reloaded.map_err(|e| (code::FAILED, e)));
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
            match task::wait_states(&host.status(), &names) {
                Err(missing) => answer(conn, Err(task::no_such_unit(&missing))),
                Ok(states) => {
                    let since = host.next_change();
                    conn.task = Task::Wait {
                        states,
                        state,
                        deadline,
                        since,
                    };
                    progress(conn, &[], host, now);
                }
            }
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
            let at_ms = unix_ms(SystemTime::now());
            for service in host.status() {
                conn.send(&Reply::ok(Body::Event {
                    service: task::info(&service, now),
                    from: None,
                    at_ms,
                    removed: false,
                }));
            }
            conn.task = Task::Events {
                since: host.next_change(),
            };
        }
        Op::Exec(request) => return exec::start(conn, request),
        Op::Kill { .. } => answer(conn, Err((code::BAD_REQUEST, "kill is for a running exec".into()))),
    }
    None
}

/// Services in a batch of a batched `status` (see `Body::Status`): at
/// 5000, the first is on its way after a twentieth of the reads.
const BATCH: usize = 256;

/// Each service's status, with what its cgroup says it uses, read now;
/// `batched`, each batch sent as soon as it is read.
fn status(conn: &mut Conn, host: &dyn Host, names: &[String], batched: bool, now: Instant) {
    let all = host.status();
    if let Some(missing) = names.iter().find(|n| !all.iter().any(|s| &s.name == *n)) {
        return answer(conn, Err(task::no_such_unit(missing)));
    }
    // Every service: their usages in one pass; some: a lookup each.
    let mut usage: Box<UsageOf<'_>> = match names.is_empty() {
        true => Box::new(in_order(host.usages())),
        false => Box::new(|name| host.usage(name)),
    };
    let batch = if batched { BATCH } else { usize::MAX };
    let mut services = Vec::with_capacity(all.len().min(batch));
    let mut rest = all
        .into_iter()
        .filter(|s| names.is_empty() || names.contains(&s.name))
        .peekable();
    while let Some(s) = rest.next() {
        let used = usage(&s.name);
        let mut info = task::into_info(s, now);
        if let Some(used) = used {
            (info.memory_bytes, info.cpu_usec, info.tasks) = (used.memory, used.cpu_usec, used.tasks);
        }
        services.push(info);
        if services.len() == batch && rest.peek().is_some() {
            let services = std::mem::replace(&mut services, Vec::with_capacity(batch));
            conn.send_more(&Reply::ok(Body::Status { services, more: true }));
            // Out now, for the client to read while the next is read; a
            // client that is gone or does not read is dropped after.
            if conn.flush().is_err() {
                return;
            }
        }
    }
    conn.send(&Reply::ok(Body::Status { services, more: false }));
}

/// A service's usage, by its name.
type UsageOf<'a> = dyn FnMut(&str) -> Option<Usage> + 'a;

/// The usage of each name asked for, from `usages` in name order, the
/// names asked for in that order too: one pass over both.
fn in_order<'a>(usages: impl Iterator<Item = (Arc<str>, Usage)> + 'a) -> impl FnMut(&str) -> Option<Usage> + 'a {
    let mut usages = usages.peekable();
    // One comparison a step (5000 services: 2% of a status).
    move |name| loop {
        match usages.peek().map(|(of, _)| (**of).cmp(name)) {
            Some(std::cmp::Ordering::Less) => drop(usages.next()),
            Some(std::cmp::Ordering::Equal) => return usages.next().map(|(_, usage)| usage),
            _ => return None,
        }
    }
}

/// A start, stop or restart; unless `no_block`, answered once the
/// service's state says how it went: at once, or on a later change.
fn operate(conn: &mut Conn, host: &mut dyn Host, event: Event, no_block: bool, name: String) {
    let stop = matches!(event, Event::Stop { .. });
    match host.request(event) {
        Err(e) => return answer(conn, Err(task::refused(&e))),
        Ok(()) if no_block => return answer(conn, Ok(None)),
        Ok(()) => {}
    }
    let since = host.next_change();
    let current = host.service(&name);
    conn.task = match stop {
        true => Task::Stop { name, since },
        false => Task::Start { name, since },
    };
    if let Some(outcome) = current.as_ref().and_then(|s| result(&conn.task, s)) {
        conn.task = Task::Idle;
        answer(conn, outcome);
    }
}

/// A start or stop task's answer, given its service's status.
fn result(task: &Task, s: &ServiceStatus) -> Option<Outcome> {
    match task {
        Task::Start { .. } => task::start_result(s),
        Task::Stop { .. } => task::stop_result(s),
        _ => None,
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

/// Moves a waiting connection on with the changes since the last round
/// (each task reads those from its own `since` on).
pub fn progress(conn: &mut Conn, changes: &[Change], host: &dyn Host, now: Instant) {
    let mut outcome = None;
    for change in changes {
        outcome = outcome.or_else(|| apply(conn, change, now));
    }
    if let Task::Wait {
        states,
        state,
        deadline,
        ..
    } = &conn.task
    {
        outcome = outcome.or_else(|| task::wait_result(states, *state));
        let expired = deadline.is_some_and(|at| at <= now);
        if outcome.is_none() && expired {
            let names: Vec<&str> = states.keys().map(String::as_str).collect();
            let message = format!("timed out waiting for {}", names.join(", "));
            outcome = Some(Err((code::NOT_RUNNING, message)));
        }
    }
    if let Task::Follow { name, seen } = &mut conn.task {
        let mut replies = Vec::new();
        follow(&mut replies, name, seen, host);
        for reply in replies {
            conn.send(&reply);
        }
    }
    if let Some(outcome) = outcome {
        conn.task = Task::Idle;
        answer(conn, outcome);
    }
}

/// One change as the connection's task sees it: an event line, an
/// updated state, or the answer it waited for.
fn apply(conn: &mut Conn, change: &Change, now: Instant) -> Option<Outcome> {
    let name = change.name();
    match &mut conn.task {
        Task::Start { since, .. } | Task::Stop { since, .. } | Task::Wait { since, .. } | Task::Events { since }
            if change.seq < *since =>
        {
            None
        }
        Task::Events { .. } => {
            conn.send(&event(change, now));
            None
        }
        Task::Start { name: n, .. } if n == name && change.removed => Some(Err(task::no_such_unit(name))),
        Task::Stop { name: n, .. } if n == name && change.removed => Some(Ok(None)),
        // A `start` or `restart` came while it was stopping: it goes up
        // again (once down), and this stop will not see it stay down.
        Task::Stop { name: n, .. } if n == name && started_again(change) => Some(Err((
            code::FAILED,
            format!("{name} was started again by another request"),
        ))),
        Task::Start { name: n, .. } | Task::Stop { name: n, .. } if n == name => result(&conn.task, &change.to),
        Task::Wait { states, .. } if states.contains_key(name) && change.removed => Some(Err(task::no_such_unit(name))),
        Task::Wait { states, .. } => {
            if let Some(state) = states.get_mut(name) {
                *state = change.state();
            }
            None
        }
        _ => None,
    }
}

/// A stopping service on its way up again.
fn started_again(change: &Change) -> bool {
    let up = matches!(
        change.state(),
        ServiceState::Starting | ServiceState::Running | ServiceState::Ready
    );
    change.from == Some(ServiceState::Stopping) && up
}

/// The `event` line of a change.
fn event(change: &Change, now: Instant) -> Reply {
    let ago = now.saturating_duration_since(change.at());
    let at = SystemTime::now().checked_sub(ago).unwrap_or_else(SystemTime::now);
    Reply::ok(Body::Event {
        service: task::info(&change.to, now),
        from: change.from,
        at_ms: unix_ms(at),
        removed: change.removed,
    })
}

fn unix_ms(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// tend is exiting: streams end with `end`, so their clients exit 0.
pub fn finish(conn: &mut Conn) {
    if matches!(conn.task, Task::Events { .. } | Task::Follow { .. }) {
        conn.task = Task::Idle;
        conn.send(&Reply::ok(Body::End));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usages_in_name_order_meet_their_services_in_one_pass() {
        let used = |cpu| Usage {
            memory: None,
            cpu_usec: Some(cpu),
            tasks: Some(1),
        };
        let usages = vec![("a".into(), used(1)), ("c".into(), used(3)), ("e".into(), used(5))];
        let mut of = in_order(usages.into_iter());
        // "b" and "d" run without a cgroup; "f" is past the last.
        let got: Vec<Option<u64>> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|name| of(name).and_then(|u| u.cpu_usec))
            .collect();
        assert_eq!(got, [Some(1), None, Some(3), None, Some(5), None]);
        // Names that sort apart as `str` do (s10 before s2).
        let mut of = in_order([("s10".into(), used(10)), ("s2".into(), used(2))].into_iter());
        assert_eq!((of("s10"), of("s2")), (Some(used(10)), Some(used(2))));
    }
}
