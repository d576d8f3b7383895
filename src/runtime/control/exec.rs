//! `exec`: a command started as a child of PID 1 with the client's own
//! stdin, stdout and stderr (received over the socket), or with a new
//! pseudo-terminal whose master goes back to the client. tend never copies
//! the command's bytes.

use std::ffi::OsString;
use std::path::Path;

use super::conn::Conn;
use super::task::Task;
use crate::ctl::protocol::{code, Body, Exec, Reply};
use crate::sys::pty;
use crate::sys::spawn::{self, Credentials, Spawn};
use crate::unit;

/// Starts the command; replies `started` (with the pty master for `tty`)
/// and returns its pid, or replies with the error.
pub fn start(conn: &mut Conn, request: Exec) -> Option<i32> {
    match spawn_command(conn, &request) {
        Ok((pid, master)) => {
            conn.send_with(&Reply::ok(Body::Started { pid }), master.into_iter().collect());
            conn.task = Task::Exec { pid };
            Some(pid)
        }
        Err((code, message)) => {
            conn.fail(&Reply::error(code, message));
            None
        }
    }
}

type Started = (i32, Option<std::os::fd::OwnedFd>);

fn spawn_command(conn: &mut Conn, request: &Exec) -> Result<Started, (i32, String)> {
    let bad = |message: String| (code::BAD_REQUEST, message);
    if request.argv.is_empty() {
        return Err(bad("exec needs a command".into()));
    }
    let mut env = Vec::new();
    let credentials = match &request.user {
        Some(user) => credentials(user, &mut env).map_err(bad)?,
        None => None,
    };
    for pair in &request.env {
        let (key, value) = pair
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .ok_or_else(|| bad(format!("bad environment entry {pair:?}: KEY=VALUE expected")))?;
        env.push((key.into(), value.into()));
    }
    if let Some(cwd) = request.cwd.as_deref().filter(|cwd| !cwd.starts_with('/')) {
        return Err(bad(format!(
            "the working directory must be an absolute path, got {cwd:?}"
        )));
    }
    let (stdio, master) = if request.tty {
        let pty = pty::open(request.size).map_err(|e| (code::FAILED, format!("cannot open a pseudo-terminal: {e}")))?;
        let dup = |fd: &std::os::fd::OwnedFd| {
            fd.try_clone()
                .map_err(|e| (code::FAILED, format!("cannot duplicate the terminal: {e}")))
        };
        ([dup(&pty.slave)?, dup(&pty.slave)?, pty.slave], Some(pty.master))
    } else {
        if conn.fds.len() < 3 {
            return Err(bad(
                "exec without a terminal needs three file descriptors (stdin, stdout, stderr) with the request".into(),
            ));
        }
        let mut fds = conn.fds.drain(..3);
        match (fds.next(), fds.next(), fds.next()) {
            (Some(i), Some(o), Some(e)) => ([i, o, e], None),
            _ => return Err(bad("missing file descriptors".into())),
        }
    };
    conn.fds.clear();
    let argv: Vec<OsString> = request.argv.iter().map(OsString::from).collect();
    let [stdin, stdout, stderr] = stdio;
    let spec = Spawn {
        argv: &argv,
        cwd: request.cwd.as_deref().map(Path::new),
        new_group: true,
        new_session: true,
        controlling_tty: request.tty,
        env,
        credentials,
        stdin: Some(stdin.into()),
        stdout: Some(stdout.into()),
        stderr: Some(stderr.into()),
        ..Spawn::default()
    };
    let pid = spawn::spawn(spec).map_err(|e| (e.exit_code(), e.to_string()))?;
    tracing::info!("exec {} (pid {pid})", request.argv.join(" "));
    Ok((pid, master))
}

/// The user's ids and groups from the environment's `/etc/passwd` and
/// `/etc/group`, and its `USER`, `LOGNAME`, `HOME` and `SHELL`: as a service
/// with `user` gets them.
fn credentials(user: &str, env: &mut Vec<(OsString, OsString)>) -> Result<Option<Credentials>, String> {
    let run_as = unit::read_users(Path::new("/"))
        .run_as_user(user)
        .map_err(|e| e.to_string())?;
    env.extend(run_as.login_env());
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    Ok(run_as.credentials(uid.as_raw(), gid.as_raw()))
}
