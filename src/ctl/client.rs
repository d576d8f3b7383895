//! The client side of the control socket: connecting (by path, or through
//! another PID 1's root with `--pid`), sending requests, reading replies.
//! Blocking: the client is not PID 1.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::protocol::{self, code, Body, Framer, Op, Reply, Request, ServiceInfo};
use crate::sys::fdpass;

/// Why talking to tend failed; each is one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no control socket at {} (is tend running there? use --socket PATH, --pid PID or -M NAME; tend list shows the machines)", .path.display())]
    Missing { path: PathBuf },
    #[error("permission denied: {} (run as root or as a member of tend's --socket-group)", .path.display())]
    Denied { path: PathBuf },
    #[error("cannot connect to {}: {source}", .path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("connection to tend failed: {0}")]
    Io(#[from] io::Error),
    #[error("cannot understand tend's reply (protocol version mismatch? this client speaks version {v}): {0}", v = protocol::VERSION)]
    Protocol(String),
    #[error("tend closed the connection")]
    Closed,
    #[error("{message}")]
    Refused { code: i32, message: String },
}

impl ClientError {
    /// The exit code for it.
    pub fn code(&self) -> i32 {
        match self {
            ClientError::Denied { .. } => code::DENIED,
            ClientError::Protocol(_) => code::VERSION,
            ClientError::Refused { code, .. } => *code,
            _ => code::FAILED,
        }
    }
}

/// The most services a batched status may bring: more than one reply of
/// `MAX_REPLY` bytes could hold (a service takes over 32 bytes of JSON).
const MAX_STATUS_SERVICES: usize = protocol::MAX_REPLY / 32;

/// A status reply's services, and whether more follow.
fn status_of(reply: Reply) -> Result<(Vec<ServiceInfo>, bool), ClientError> {
    match reply.body {
        Body::Status { services, more } => Ok((services, more)),
        _ => Err(ClientError::Protocol("expected a status reply".into())),
    }
}

/// The socket of the tend whose PID 1 has host pid `pid`.
pub fn socket_of_pid(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root{}", super::socket_path::DEFAULT_SOCKET))
}

pub struct Client {
    pub stream: UnixStream,
    /// Where it connected (to connect again).
    path: PathBuf,
    framer: Framer,
    /// Fds received and not taken yet.
    fds: VecDeque<OwnedFd>,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| match source.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ECONNREFUSED) | Some(libc::ENOTDIR) => {
                ClientError::Missing { path: path.into() }
            }
            Some(libc::EACCES) | Some(libc::EPERM) => ClientError::Denied { path: path.into() },
            _ => ClientError::Connect {
                path: path.into(),
                source,
            },
        })?;
        Ok(Client {
            stream,
            path: path.into(),
            // Replies may be longer than requests (see `MAX_REPLY`).
            framer: Framer::with_limit(protocol::MAX_REPLY),
            fds: VecDeque::new(),
        })
    }

    /// Sends one request; `fds` go with its first byte. When tend hung up
    /// first (a refused peer), its last words are the error.
    pub fn send(&mut self, request: &Request, fds: &[RawFd]) -> Result<(), ClientError> {
        match self.send_line(request, fds) {
            Err(ClientError::Io(e))
                if matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset) =>
            {
                match self.reply() {
                    Err(refused @ ClientError::Refused { .. }) => Err(refused),
                    _ => Err(ClientError::Io(e)),
                }
            }
            other => other,
        }
    }

    fn send_line(&mut self, request: &Request, fds: &[RawFd]) -> Result<(), ClientError> {
        let mut line = serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        let mut sent = 0;
        if !fds.is_empty() {
            sent = loop {
                match fdpass::send(&self.stream, &line, fds) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            };
        }
        self.stream.write_all(&line[sent..])?;
        Ok(())
    }

    /// The next reply; `Ok(None)` when tend closed the connection.
    pub fn recv(&mut self) -> Result<Option<Reply>, ClientError> {
        loop {
            match self.framer.next_frame() {
                Ok(Some(line)) => {
                    return protocol::parse_reply(&line)
                        .map(Some)
                        .map_err(|e| ClientError::Protocol(e.to_string()))
                }
                Ok(None) => {}
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            }
            // Small: each page of it is a page fault at the first read, and
            // the framer gathers a longer reply over several reads.
            let mut buf = [0u8; 8 * 1024];
            let mut fds = Vec::new();
            let n = match fdpass::recv(&self.stream, &mut buf, &mut fds, false) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.fds.extend(fds);
            if n == 0 {
                return Ok(None);
            }
            self.framer.feed(&buf[..n]);
        }
    }

    /// The next reply, which must come; an error reply becomes `Refused`.
    pub fn reply(&mut self) -> Result<Reply, ClientError> {
        match self.recv()? {
            None => Err(ClientError::Closed),
            Some(Reply {
                ok: false,
                body: protocol::Body::Error { code, error },
            }) => Err(ClientError::Refused { code, message: error }),
            Some(reply) => Ok(reply),
        }
    }

    /// A request and its single reply.
    pub fn call(&mut self, request: &Request) -> Result<Reply, ClientError> {
        self.send(request, &[])?;
        self.reply()
    }

    /// The status of `names` (every service when empty), in the batches
    /// tend sends as it reads them (see [`Body::Status`]); from a tend that
    /// predates batches (it refuses the field and hangs up), asked again
    /// on a new connection and read in one reply.
    pub fn status(&mut self, names: &[String]) -> Result<Vec<ServiceInfo>, ClientError> {
        let mut services = Vec::new();
        self.status_batches(names, &mut |batch| services.extend(batch))?;
        Ok(services)
    }

    /// [`Client::status`], each batch handed to `each` as it comes: the
    /// caller works on one while tend reads the next.
    pub fn status_batches(
        &mut self,
        names: &[String],
        each: &mut dyn FnMut(Vec<ServiceInfo>),
    ) -> Result<(), ClientError> {
        let ask = |batched| {
            Request::new(Op::Status {
                names: names.to_vec(),
                batched,
            })
        };
        let mut reply = match self.call(&ask(true)) {
            Err(ClientError::Refused {
                code: code::BAD_REQUEST,
                message,
            }) if message.contains("`batched`") => {
                *self = Client::connect(&self.path)?;
                each(status_of(self.call(&ask(false))?)?.0);
                return Ok(());
            }
            reply => reply?,
        };
        // As bounded as one reply was (`MAX_REPLY`), whatever the socket
        // answers: `--pid` reaches a socket in the container's own tree.
        let mut left = MAX_STATUS_SERVICES;
        loop {
            let (batch, more) = status_of(reply)?;
            if batch.len() > left || (more && batch.is_empty()) {
                let why = format!("a status of more than {MAX_STATUS_SERVICES} services, or an empty batch");
                return Err(ClientError::Protocol(why));
            }
            left -= batch.len();
            each(batch);
            if !more {
                return Ok(());
            }
            reply = self.reply()?;
        }
    }

    /// Whether bytes of a reply are held already (then reading goes on
    /// without waiting for the socket to be readable).
    pub fn buffered(&self) -> bool {
        self.framer.pending() > 0
    }

    /// The oldest fd received with a reply.
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fds.pop_front()
    }

    pub fn raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}
