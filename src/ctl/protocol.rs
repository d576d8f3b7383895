//! The control socket's wire protocol, version [`VERSION`]: newline-delimited
//! JSON over a Unix stream socket (see `docs/protocol.md`). Pure: framing,
//! requests, replies and exit codes; no IO.
//!
//! A client writes one [`Request`] per line and reads [`Reply`] lines; a
//! connection may carry several requests, one after the other. Streams
//! (`logs --follow`, `events`, `exec`) take over the connection until their end.

use serde::{Deserialize, Serialize};

pub use crate::supervisor::ServiceState;

/// The protocol version this tend speaks.
pub const VERSION: u32 = 1;

/// Longest request frame (one JSON line, newline included) the server accepts.
pub const MAX_FRAME: usize = 64 * 1024;

/// Longest reply frame the client accepts. Replies grow with the number of
/// services (`status` of 5000 services is about 1 MiB), so they get more
/// room than requests; the server never sends a longer one (it sends an
/// error instead), so every reply it can produce is readable.
pub const MAX_REPLY: usize = 16 * 1024 * 1024;

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

/// One request line: `{"v":1,"op":"status","names":["web"]}` (read by
/// [`parse_request`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// What a client asks for. Written through serde; read by hand (`request`,
/// which refuses unknown fields, for variants without fields too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    Ping {},
    Version {},
    /// Every service, or those named. `batched`: the client reads the
    /// status of every service in batches (see [`Body::Status`]); a server
    /// that predates it refuses the field.
    Status {
        names: Vec<String>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        batched: bool,
    },
    /// Replies once the service is up (or failed), at once with `no_block`.
    Start {
        name: String,
        no_block: bool,
    },
    /// Replies once the service is down, at once with `no_block`.
    Stop {
        name: String,
        no_block: bool,
    },
    Restart {
        name: String,
        no_block: bool,
    },
    /// `signal`: a name (`TERM`, `SIGHUP`, `RTMIN+3`) or a number.
    Signal {
        name: String,
        signal: String,
    },
    /// The last `lines` captured lines, then new ones as they come with
    /// `follow`; without `name`, tend's own log where it keeps one.
    Logs {
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        lines: Option<usize>,
        follow: bool,
    },
    Reload {},
    Shutdown {},
    /// Replies once every service named is in `state` (see [`WaitFor`]).
    Wait {
        names: Vec<String>,
        #[serde(rename = "for")]
        state: WaitFor,
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Exec {
    pub argv: Vec<String>,
    pub user: Option<String>,
    /// `KEY=VALUE`, on top of tend's environment.
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub tty: bool,
    /// The terminal size for `tty`: (rows, columns).
    pub size: Option<(u16, u16)>,
}

/// What `wait` can wait for: any state word (see [`ServiceState`]), or
/// `up`, `down` (and `stopped`, the same as `down`). `running` is met by a
/// ready service too: a ready service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum WaitFor {
    State(ServiceState),
    Group(Group),
}

/// A group of states `wait` accepts under one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Running or ready.
    Up,
    /// Not running: exited, failed, disabled or invalid.
    Down,
    /// The same as `down`.
    Stopped,
}

impl WaitFor {
    /// Does a service in `state` satisfy this?
    pub fn met_by(self, state: ServiceState) -> bool {
        use ServiceState as S;
        match self {
            WaitFor::State(S::Running) | WaitFor::Group(Group::Up) => matches!(state, S::Running | S::Ready),
            WaitFor::State(wanted) => state == wanted,
            WaitFor::Group(Group::Down | Group::Stopped) => {
                matches!(state, S::Exited | S::Failed | S::Disabled | S::Invalid)
            }
        }
    }
}

impl std::str::FromStr for WaitFor {
    type Err = String;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        request::wait_for(&serde_json::Value::String(word.to_string())).map_err(|_| {
            let states: Vec<String> = ServiceState::ALL.iter().map(ToString::to_string).collect();
            format!("unknown state {word:?} ({}; up, down, stopped)", states.join(", "))
        })
    }
}

/// One reply line: `{"ok":true,"kind":"status","services":[...]}`, or
/// `{"ok":false,"kind":"error","error":"no service named x","code":4}`.
/// Read by hand (`reply`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
        // A service is about 100 bytes: one allocation for a status of
        // thousands, not a series of copies as it grows.
        let size = match &self.body {
            Body::Status { services, .. } => services.len().saturating_mul(128).saturating_add(64),
            _ => 128,
        };
        let mut line = Vec::with_capacity(size);
        if serde_json::to_writer(&mut line, self).is_err() {
            line = br#"{"ok":false,"kind":"error"}"#.to_vec();
        }
        line.push(b'\n');
        line
    }
}

/// What a reply says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// With `more`, another batch of the same status follows: the server
    /// sends each as it is read, so the client reads one while the server
    /// reads the next (only when the request asked for `batched`).
    Status {
        services: Vec<ServiceInfo>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
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
    /// A service changed state (or, first, each service as it is).
    Event {
        service: ServiceInfo,
        /// The state before; absent for the current states sent first and
        /// for a service a reload added.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<ServiceState>,
        /// When, in milliseconds since the Unix epoch.
        #[serde(default)]
        at_ms: u64,
        /// A reload removed the service.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        removed: bool,
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
    pub state: ServiceState,
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
    /// A scheduled unit's next run, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_ms: Option<u64>,
    /// Its liveness check's verdict while it is up (`starting`, `healthy`,
    /// `unhealthy`); absent without a check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::supervisor::Health>,
    /// Exits the kernel's OOM killer caused.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub oom_kills: u32,
    /// What its cgroup says it uses, read at the request (`status` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_usec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why a frame was refused; the connection is closed after the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame longer than {limit} bytes")]
    TooLong { limit: usize },
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
    let value: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line).map_err(malformed)?;
    match value.get("v").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(got) => return Err(FrameError::Version { got }),
        None => return Err(FrameError::Malformed("missing protocol version \"v\"".into())),
    }
    let op = request::op(value).map_err(FrameError::Malformed)?;
    check_durations(&op)?;
    Ok(Request::new(op))
}

/// Durations from a client are bounded as those of the command line.
fn check_durations(op: &Op) -> Result<(), FrameError> {
    let max = crate::unit::MAX_DURATION.as_millis();
    match op {
        Op::Wait {
            timeout_ms: Some(ms), ..
        } if u128::from(*ms) > max => Err(FrameError::Malformed(format!(
            "timeout_ms {ms} is longer than {max}, the longest duration tend accepts"
        ))),
        _ => Ok(()),
    }
}

/// Parses one reply line (without its newline).
pub fn parse_reply(line: &[u8]) -> Result<Reply, FrameError> {
    if let Some(reply) = parse_status_reply(line) {
        return Ok(reply);
    }
    serde_json::from_slice(line).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// A status reply as tend writes it (`ok` and `kind` first) read in one
/// pass: `Reply`'s flattened, tagged body is read through serde's buffered
/// `Content`, a third of a `tend ctl status` client's work. `None` for any
/// other line, which [`parse_reply`] then reads in full.
fn parse_status_reply(line: &[u8]) -> Option<Reply> {
    // The same fields as `Reply` with `Body::Status`; others are skipped,
    // as there.
    #[derive(Deserialize)]
    struct StatusLine {
        ok: bool,
        kind: String,
        services: Vec<ServiceInfo>,
        #[serde(default)]
        more: bool,
    }
    if !line.starts_with(br#"{"ok":true,"kind":"status","#) {
        return None;
    }
    // Checked as UTF-8 once, not string by string.
    let status: StatusLine = serde_json::from_str(std::str::from_utf8(line).ok()?).ok()?;
    (status.ok && status.kind == "status").then(|| {
        Reply::ok(Body::Status {
            services: status.services,
            more: status.more,
        })
    })
}

/// Splits a byte stream into lines of at most `limit` bytes: [`MAX_FRAME`]
/// for requests (the default), [`MAX_REPLY`] for replies.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Where the bytes not taken as frames yet begin. Frames are taken in
    /// place and the rest moved once per feed, not once per frame: a read
    /// of many short requests costs linear time, not quadratic.
    start: usize,
    /// Bytes after `start` already searched for a newline.
    scanned: usize,
    limit: usize,
}

impl Default for Framer {
    fn default() -> Framer {
        Framer::with_limit(MAX_FRAME)
    }
}

impl Framer {
    /// A framer for lines of at most `limit` bytes, newline included.
    pub fn with_limit(limit: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            limit,
        }
    }

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
                if len + 1 > self.limit {
                    return Err(FrameError::TooLong { limit: self.limit });
                }
                let line = rest[..len].to_vec();
                self.start += len + 1;
                self.scanned = 0;
                Ok(Some(line))
            }
            None if rest.len() >= self.limit => Err(FrameError::TooLong { limit: self.limit }),
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

mod reply;
mod request;
#[cfg(test)]
mod tests;
