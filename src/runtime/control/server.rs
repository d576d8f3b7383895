//! The control server, run by the init loop: a non-blocking Unix listener
//! and its connections, all in one mio token namespace (tokens from
//! [`BASE`] up) so that the loop only asks [`Server::owns`] and hands the
//! token over. Nothing here blocks or can make PID 1 exit: every failure
//! ends at most the one connection it concerns.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use tracing::{debug, info, warn};

use super::conn::{Conn, Read};
use super::handle;
use super::task::{Host, Task};
use crate::ctl::protocol::{self, code, Body, Reply};
use crate::supervisor::{Change, ExitStatus};
use crate::sys::{fdpass, process, spawn};

/// The first token of the server's namespace: its listeners take the first
/// `LISTENERS`, connections the ones above. Far above what the services'
/// sources ever reach.
pub const BASE: usize = 1 << (usize::BITS - 8);

/// At most this many sockets served (the one inside, a machine's on the host).
const LISTENERS: usize = 4;

/// Connections served at once, at most; more are refused. Lower when the
/// descriptor limit is: see [`conn_limit`].
pub(crate) const MAX_CONNS: usize = 4096;

/// Where and for whom to serve.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// Members of this group (besides root) may use the socket.
    pub group: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create {path}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("cannot serve the control socket {path}")]
    Bind { path: PathBuf, source: io::Error },
}

pub struct Server {
    listeners: Vec<UnixListener>,
    registry: Registry,
    path: PathBuf,
    group: Option<u32>,
    own_uid: u32,
    conns: HashMap<Token, Conn>,
    next: usize,
    /// Pid of each `exec` command → its connection.
    execs: HashMap<i32, Token>,
    /// Accepting stopped (no fds left); retried when a connection closes.
    accept_blocked: bool,
    /// An fd held in reserve (`/dev/null`): when accepting fails for want
    /// of descriptors, it is closed to accept the connection and refuse it,
    /// then opened again, so the backlog drains instead of waking us forever.
    spare: Option<OwnedFd>,
    /// New connections are being refused (said once, until it eases).
    refusing: bool,
}

impl Server {
    /// Creates the directory (0700, or 0750 for a group) and the socket
    /// (0600 or 0660), replacing a stale one, and starts listening.
    pub fn bind(config: &Config, registry: &Registry) -> Result<Server, Error> {
        let path = config.path.clone();
        let bind_error = |source| Error::Bind {
            path: path.clone(),
            source,
        };
        let listener = listen(&path, config.group).map_err(bind_error)?;
        let registry = registry.try_clone().map_err(bind_error)?;
        let mut server = Server {
            listeners: Vec::new(),
            registry,
            path: path.clone(),
            group: config.group,
            own_uid: nix::unistd::geteuid().as_raw(),
            conns: HashMap::new(),
            next: BASE + LISTENERS,
            execs: HashMap::new(),
            accept_blocked: false,
            spare: spawn::dev_null(),
            refusing: false,
        };
        server.add_listener(listener).map_err(bind_error)?;
        Ok(server)
    }

    /// Serves one more socket, bound by someone else: a booted machine's
    /// host-side socket, bound before its PID 1 left the host's file system.
    /// Its file is not ours to remove.
    pub fn add_listener(&mut self, listener: std::os::unix::net::UnixListener) -> io::Result<()> {
        if self.listeners.len() == LISTENERS {
            return Err(io::Error::other("too many control sockets"));
        }
        listener.set_nonblocking(true)?;
        let mut listener = UnixListener::from_std(listener);
        let token = Token(BASE.saturating_add(self.listeners.len()));
        self.registry.register(&mut listener, token, Interest::READABLE)?;
        self.listeners.push(listener);
        Ok(())
    }

    pub fn owns(&self, token: Token) -> bool {
        token.0 >= BASE
    }

    /// A token of ours is ready: accept, or read, answer and write.
    pub fn ready(&mut self, token: Token, host: &mut dyn Host, now: Instant) {
        if token.0 < BASE + LISTENERS {
            self.accept();
        } else {
            self.drive(token, host, now);
        }
    }

    /// After a round of the loop, with the state changes it saw (in order):
    /// answers waiting requests, feeds the streams, retries what was left
    /// for later.
    pub fn settle(&mut self, host: &mut dyn Host, changes: &[Change], now: Instant) {
        if self.accept_blocked {
            self.accept();
        }
        let busy: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| !matches!(c.task, Task::Idle) || c.more)
            .map(|(t, _)| *t)
            .collect();
        for token in busy {
            if let Some(conn) = self.conns.get_mut(&token) {
                handle::progress(conn, changes, host, now);
            }
            self.drive(token, host, now);
        }
    }

    /// When a `wait` times out; now when a client has input left to read.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let mut deadline = None;
        for conn in self.conns.values() {
            let at = match conn.task {
                _ if conn.more => Some(now),
                Task::Wait { deadline, .. } => deadline,
                _ => None,
            };
            deadline = deadline.into_iter().chain(at).min();
        }
        deadline
    }

    /// A reaped child: if an `exec` started it, its client gets the exit code.
    pub fn reaped(&mut self, pid: i32, status: ExitStatus) -> bool {
        let Some(token) = self.execs.remove(&pid) else {
            return false;
        };
        debug!("exec pid {pid} {status}");
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.task = Task::Idle;
            conn.fail(&Reply::ok(Body::Exited { code: status.code() }));
            self.flush(token);
        }
        true
    }

    /// tend is exiting: send what can be sent without waiting, remove the socket.
    pub fn close(&mut self) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            if let Some(conn) = self.conns.get_mut(&token) {
                handle::finish(conn);
                let _ = conn.flush();
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }

    /// Accepts what waits on every listener (edge-triggered: all of it).
    fn accept(&mut self) {
        self.accept_blocked = false;
        let limit = conn_limit();
        for i in 0..self.listeners.len() {
            // The listeners after the first were bound by a machine's
            // launcher on the host (`add_listener`), 0600 in a 0700
            // directory: whoever connects passed that check, and may be
            // unmapped here (host root is the overflow uid in a container's
            // user namespace).
            let host_side = i > 0;
            loop {
                match self.listeners[i].accept() {
                    Ok((stream, _)) => self.admit(stream, limit, host_side),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if out_of_fds(&e) && self.spare.take().is_some() => {
                        let refused = self.refuse_one(i);
                        self.spare = spawn::dev_null();
                        if !refused {
                            // Even the spare's fd was not enough (the whole
                            // system is out): wait for a connection to close.
                            self.accept_blocked = true;
                            return;
                        }
                    }
                    Err(e) => {
                        // Nothing in reserve: leave the rest in the backlog
                        // until a connection closes.
                        debug!("cannot accept a control connection: {e}");
                        self.accept_blocked = true;
                        return;
                    }
                }
            }
        }
    }

    /// Out of descriptors, with the spare closed: takes one connection off
    /// listener `i` and refuses it. False when none could be taken.
    fn refuse_one(&mut self, i: usize) -> bool {
        self.refusing("tend is out of file descriptors");
        match self.listeners[i].accept() {
            Ok((stream, _)) => {
                let reply = Reply::error(code::FAILED, "too many connections: tend is out of file descriptors");
                let _ = fdpass::send(&stream, &reply.to_line(), &[]);
                true
            }
            Err(e) => {
                debug!("cannot accept a control connection: {e}");
                false
            }
        }
    }

    /// Says once (until connections ease) that new ones are refused.
    fn refusing(&mut self, why: &str) {
        if !std::mem::replace(&mut self.refusing, true) {
            warn!("refusing new control connections: {why} (they are answered with an error until some close)");
        }
    }

    fn admit(&mut self, mut stream: UnixStream, limit: usize, host_side: bool) {
        let token = Token(self.next);
        self.next = self.next.saturating_add(1);
        if self.conns.len() >= limit {
            self.refusing(&format!(
                "{limit} are open, the most the descriptor limit allows beside supervision"
            ));
        }
        let refusal = match fdpass::peer(&stream) {
            _ if self.conns.len() >= limit => Some(Reply::error(code::FAILED, "too many connections")),
            Ok(peer) if host_side || self.allowed(&peer) => None,
            Ok(peer) => Some(Reply::error(
                code::DENIED,
                format!("permission denied: uid {} may not use this socket", peer.uid),
            )),
            Err(e) => Some(Reply::error(
                code::DENIED,
                format!("permission denied: unknown peer ({e})"),
            )),
        };
        if let Some(reply) = refusal {
            // One try, never waiting: the socket buffer of a new connection has room.
            let _ = fdpass::send(&stream, &reply.to_line(), &[]);
            return;
        }
        if let Err(e) = self
            .registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            warn!("cannot watch a control connection: {e}");
            return;
        }
        self.conns.insert(token, Conn::new(stream));
    }

    fn allowed(&self, peer: &fdpass::Peer) -> bool {
        peer.uid == 0
            || peer.uid == self.own_uid
            || self.group.is_some_and(|g| peer.gid == g || peer.groups.contains(&g))
    }

    /// Reads, answers what can be answered, writes; closes when done.
    fn drive(&mut self, token: Token, host: &mut dyn Host, now: Instant) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if let Read::Failed = conn.read() {
            return self.drop_conn(token);
        }
        while matches!(conn.task, Task::Idle) && !conn.closing {
            match conn.framer.next_frame() {
                Ok(None) => break,
                Ok(Some(line)) => match protocol::parse_request(&line) {
                    Ok(request) => {
                        if let Some(pid) = handle::handle(conn, request.op, host, now) {
                            self.execs.insert(pid, token);
                        }
                    }
                    Err(e) => conn.fail(&e.reply()),
                },
                Err(e) => conn.fail(&e.reply()),
            }
        }
        if let Task::Exec { pid } = conn.task {
            forward_kills(conn, pid);
        }
        let streaming = !matches!(conn.task, Task::Idle);
        if streaming && !conn.closing && conn.framer.pending() > MAX_BEHIND {
            conn.fail(&Reply::error(
                code::BAD_REQUEST,
                "too many requests behind a running one",
            ));
        }
        if conn.eof {
            // The client is gone (or said all it will): streams end, an
            // `exec` command is hung up on, and a partial request left in
            // the buffer will never be completed.
            if let Task::Exec { pid } = conn.task {
                let _ = process::kill(pid.saturating_neg(), libc::SIGHUP);
            }
            if streaming {
                return self.drop_conn(token);
            }
            conn.closing = true;
        }
        self.flush(token);
    }

    fn flush(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        match conn.flush() {
            Err(e) => {
                debug!("dropping a control client: {e}");
                self.drop_conn(token);
            }
            Ok(()) if conn.closing && conn.flushed() => self.drop_conn(token),
            Ok(()) => {}
        }
    }

    fn drop_conn(&mut self, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            let _ = self.registry.deregister(&mut conn.stream);
            if let Task::Exec { pid } = conn.task {
                let _ = process::kill(pid.saturating_neg(), libc::SIGHUP);
            }
        }
        if self.refusing && self.conns.len() < conn_limit() / 2 {
            self.refusing = false;
            info!("accepting control connections again");
        }
        if self.accept_blocked {
            self.accept();
        }
    }
}

/// Input held for a connection whose task runs (pipelined requests, or
/// `kill` lines), at most; more fails the connection, so memory stays bounded.
const MAX_BEHIND: usize = 4 * protocol::MAX_FRAME;

/// Connections served at once: half the soft descriptor limit (as it is
/// now: tend may have raised it at start), so that however many clients
/// connect, supervision keeps the other half for its pipes, cgroups and
/// processes.
fn conn_limit() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    usize::try_from(soft / 2).unwrap_or(MAX_CONNS).min(MAX_CONNS)
}

/// Accepting failed for want of descriptors (ours, or the system's).
fn out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// While an `exec` runs, the client may pass signals on (its Ctrl-C): each
/// `kill` frame signals the command's process group; anything else is
/// dropped, as the connection's answer is the command's exit.
fn forward_kills(conn: &mut Conn, pid: i32) {
    loop {
        let line = match conn.framer.next_frame() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            // Too long: refused and closed, as any other time; the command
            // gets SIGHUP as when its client leaves.
            Err(e) => return conn.fail(&e.reply()),
        };
        let signal = match protocol::parse_request(&line).map(|r| r.op) {
            Ok(protocol::Op::Kill { signal }) => crate::signal::parse(&signal),
            _ => None,
        };
        match signal {
            Some(signal) => {
                let _ = process::kill(pid.saturating_neg(), signal);
            }
            None => debug!("exec pid {pid}: ignoring a frame that is no kill"),
        }
    }
}

/// Creates the directory (0700, 0750 with a group) and binds a listening,
/// non-blocking, close-on-exec socket at `path` (0600, 0660 with a group),
/// its mode set before `listen` so no one connects through looser ones.
pub fn listen(path: &Path, group: Option<u32>) -> io::Result<std::os::unix::net::UnixListener> {
    use nix::sys::socket::{bind, listen as nix_listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    // Only a directory we make is ours to restrict: `--socket /tmp/x.sock`
    // must not change /tmp.
    if let Some(dir) = path.parent().filter(|d| !d.exists()) {
        std::fs::create_dir_all(dir)?;
        let mode = if group.is_some() { 0o750 } else { 0o700 };
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
        if group.is_some() {
            chown(dir, None, group)?;
        }
    }
    // A socket left by an earlier tend can go; a live one (another tend
    // answering there) must not be stolen.
    if alive(path) {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another tend is listening there",
        ));
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    if group.is_some() {
        chown(path, None, group)?;
    }
    nix_listen(&fd, Backlog::new(1024).unwrap_or(Backlog::MAXCONN))?;
    Ok(std::os::unix::net::UnixListener::from(fd))
}

/// Someone listens on `path` (a non-blocking connect, so a full backlog
/// cannot make us wait).
fn alive(path: &Path) -> bool {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let Ok(fd) = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    ) else {
        return false;
    };
    let Ok(addr) = UnixAddr::new(path) else {
        return false;
    };
    match connect(fd.as_raw_fd(), &addr) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EAGAIN,
    }
}
