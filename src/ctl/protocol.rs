//! The control socket's wire protocol, version [`VERSION`]: newline-delimited
//! JSON over a Unix stream socket (see `docs/protocol.md`). Pure: framing,
//! requests, replies and exit codes; no IO.
//!
//! A client writes one [`Request`] per line and reads [`Reply`] lines; a
//! connection may carry several requests, one after the other. Streams
//! (`logs --follow`, `events`, `exec`) take over the connection until their end.

use serde::{Deserialize, Serialize};

/// The protocol version this tend speaks.
pub const VERSION: u32 = 1;

/// Longest frame (one JSON line, newline included) either side accepts.
pub const MAX_FRAME: usize = 64 * 1024;

/// Exit codes, after systemctl and LSB where they apply.
pub mod code {
    /// The request failed (a start that failed, a service that is unhealthy).
    pub const FAILED: i32 = 1;
    /// The request was malformed, unknown or had a bad argument.
    pub const BAD_REQUEST: i32 = 2;
    /// Not in the state asked for (`wait` timed out, `status` of a down service).
    pub const NOT_RUNNING: i32 = 3;
    /// No such unit.
    pub const NO_SUCH_UNIT: i32 = 4;
    /// The peer may not use the socket.
    pub const DENIED: i32 = 5;
    /// The peer speaks another protocol version.
    pub const VERSION: i32 = 6;
}

/// One request line: `{"v":1,"op":"status","names":["web"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    #[serde(flatten)]
    pub op: Op,
}

impl Request {
    pub fn new(op: Op) -> Request {
        Request { v: VERSION, op }
    }
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
/// Variants without fields are written `Ping {}` so that unknown fields
/// are refused for them too.
pub enum Op {
    Ping {},
    Version {},
    /// Every service, or those named.
    Status {
        #[serde(default)]
        names: Vec<String>,
    },
    /// Replies once the service is up (or failed), at once with `no_block`.
    Start {
        name: String,
        #[serde(default)]
        no_block: bool,
    },
    /// Replies once the service is down, at once with `no_block`.
    Stop {
        name: String,
        #[serde(default)]
        no_block: bool,
    },
    Restart {
        name: String,
        #[serde(default)]
        no_block: bool,
    },
    /// `signal`: a name (`TERM`, `SIGHUP`, `RTMIN+3`) or a number.
    Signal {
        name: String,
        signal: String,
    },
    /// The last `lines` captured lines, then new ones as they come with `follow`.
    Logs {
        name: String,
        #[serde(default)]
        lines: Option<usize>,
        #[serde(default)]
        follow: bool,
    },
    Reload {},
    Shutdown {},
    /// Replies once every service named is in `state` (see [`WaitFor`]).
    Wait {
        names: Vec<String>,
        #[serde(rename = "for")]
        state: WaitFor,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    Health {},
    /// A stream of state changes.
    Events {},
    /// Runs a command as a child of PID 1; see `docs/protocol.md` for the fds.
    Exec(Exec),
    /// On a connection whose `exec` runs: send this signal (a name or a
    /// number) to the command's process group. No reply.
    Kill {
        signal: String,
    },
}

/// `exec`: without `tty`, the request line carries the client's stdin,
/// stdout and stderr (SCM_RIGHTS, in that order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    pub argv: Vec<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// `KEY=VALUE`, on top of tend's environment.
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub tty: bool,
    /// The terminal size for `tty`: (rows, columns).
    #[serde(default)]
    pub size: Option<(u16, u16)>,
}

/// The states `wait` can wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitFor {
    /// Ready.
    Ready,
    /// Running or ready.
    Running,
    /// Not running: exited, failed, disabled or invalid.
    Stopped,
    Failed,
}

impl WaitFor {
    /// Does a service in `state` (as shown by `status`) satisfy this?
    pub fn met_by(self, state: &str) -> bool {
        match self {
            WaitFor::Ready => state == "ready",
            WaitFor::Running => matches!(state, "running" | "ready"),
            WaitFor::Stopped => matches!(state, "exited" | "failed" | "disabled" | "invalid"),
            WaitFor::Failed => state == "failed",
        }
    }
}

/// One reply line: `{"ok":true,"kind":"status","services":[...]}`, or
/// `{"ok":false,"kind":"error","error":"no service named x","code":4}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(flatten)]
    pub body: Body,
}

impl Reply {
    pub fn ok(body: Body) -> Reply {
        Reply { ok: true, body }
    }

    pub fn error(code: i32, error: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            body: Body::Error {
                error: error.into(),
                code,
            },
        }
    }

    /// The line to send, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| br#"{"ok":false,"kind":"error"}"#.to_vec());
        line.push(b'\n');
        line
    }
}

/// What a reply says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Body {
    Error {
        error: String,
        code: i32,
    },
    /// The request was carried out (or, for `no_block`, accepted).
    Done {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Pong,
    Version {
        version: String,
        protocol: u32,
    },
    Status {
        services: Vec<ServiceInfo>,
    },
    Health {
        healthy: bool,
        reasons: Vec<String>,
    },
    /// One captured line of `logs`.
    Log {
        line: String,
    },
    /// The end of `logs` without `follow`.
    End,
    /// A service changed state.
    Event {
        service: ServiceInfo,
    },
    /// `exec` started the command; with `tty`, this line carries the
    /// pseudo-terminal's master (SCM_RIGHTS).
    Started {
        pid: i32,
    },
    /// `exec`'s command ended: its exit code, or 128+N for signal N.
    Exited {
        code: i32,
    },
}

/// One service as `status` and `events` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub name: String,
    /// starting, running, ready, stopping, exited, failed, invalid, disabled.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Milliseconds since the state last changed.
    pub since_ms: u64,
    pub restarts: u32,
    /// e.g. "exited with code 1", "killed by SIGTERM".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
    /// The service's own `STATUS=` text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    /// Why it is in this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why a frame was refused; the connection is closed after the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame longer than {MAX_FRAME} bytes")]
    TooLong,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("protocol version {got} is not supported (this tend speaks version {VERSION})")]
    Version { got: u64 },
}

impl FrameError {
    /// The reply that explains it.
    pub fn reply(&self) -> Reply {
        let code = match self {
            FrameError::Version { .. } => code::VERSION,
            _ => code::BAD_REQUEST,
        };
        Reply::error(code, self.to_string())
    }
}

/// Parses one request line (without its newline). The version is checked
/// first, so a newer client gets "version" rather than "malformed".
pub fn parse_request(line: &[u8]) -> Result<Request, FrameError> {
    let malformed = |e: serde_json::Error| FrameError::Malformed(e.to_string());
    let mut value: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line).map_err(malformed)?;
    match value.remove("v").as_ref().and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(got) => return Err(FrameError::Version { got }),
        None => return Err(FrameError::Malformed("missing protocol version \"v\"".into())),
    }
    // `Op` alone, so that its `deny_unknown_fields` sees every other field.
    let op = serde_json::from_value(serde_json::Value::Object(value)).map_err(malformed)?;
    Ok(Request::new(op))
}

/// Parses one reply line (without its newline).
pub fn parse_reply(line: &[u8]) -> Result<Reply, FrameError> {
    serde_json::from_slice(line).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Splits a byte stream into lines of at most [`MAX_FRAME`] bytes.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Where the bytes not taken as frames yet begin. Frames are taken in
    /// place and the rest moved once per feed, not once per frame: a read
    /// of many short requests costs linear time, not quadratic.
    start: usize,
    /// Bytes after `start` already searched for a newline.
    scanned: usize,
}

impl Framer {
    /// Appends bytes read from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line, without its newline; `Ok(None)` when more
    /// bytes are needed; `Err(TooLong)` when no newline came in time.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let rest = &self.buf[self.start..];
        match rest[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let len = self.scanned + i;
                if len + 1 > MAX_FRAME {
                    return Err(FrameError::TooLong);
                }
                let line = rest[..len].to_vec();
                self.start += len + 1;
                self.scanned = 0;
                Ok(Some(line))
            }
            None if rest.len() >= MAX_FRAME => Err(FrameError::TooLong),
            None => {
                self.scanned = rest.len();
                Ok(None)
            }
        }
    }

    /// Bytes held that are not a whole line yet.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests;
