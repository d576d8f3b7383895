//! The sd_notify protocol, both ways: a datagram socket per service on
//! which it may send `READY=1`, `STATUS=...`, `STOPPING=1`, and the messages
//! tend itself sends to its own manager when given `$NOTIFY_SOCKET`.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use mio::{Interest, Registry, Token};

/// One assignment from a notification datagram that tend acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Ready,
    Status(String),
    Stopping,
    /// `WATCHDOG=1`.
    Watchdog,
    /// `WATCHDOG=trigger`.
    WatchdogTrigger,
    /// `EXTEND_TIMEOUT_USEC=N`.
    ExtendTimeout(Duration),
    /// `WATCHDOG_USEC=N`: the watchdog's interval, for this run.
    WatchdogUsec(Duration),
}

/// Parses a datagram: newline-separated `KEY=VALUE` assignments. Unknown
/// keys (MAINPID, ...) and malformed values are ignored, as systemd ignores
/// them when they do not apply.
pub fn parse(datagram: &[u8]) -> Vec<Notice> {
    let text = String::from_utf8_lossy(datagram);
    text.lines()
        .filter_map(|line| match line.split_once('=')? {
            ("READY", "1") => Some(Notice::Ready),
            ("STOPPING", "1") => Some(Notice::Stopping),
            ("STATUS", status) => Some(Notice::Status(status.to_string())),
            ("WATCHDOG", "1") => Some(Notice::Watchdog),
            ("WATCHDOG", "trigger") => Some(Notice::WatchdogTrigger),
            ("EXTEND_TIMEOUT_USEC", usec) => usec
                .parse()
                .ok()
                .map(|n| Notice::ExtendTimeout(Duration::from_micros(n))),
            ("WATCHDOG_USEC", usec) => usec
                .parse()
                .ok()
                .map(|n| Notice::WatchdogUsec(Duration::from_micros(n))),
            _ => None,
        })
        .collect()
}

/// Binds a service's notification socket in the abstract namespace (no
/// file to create or clean up, works on a read-only root). Returns the
/// socket and the `NOTIFY_SOCKET` value (`@name`).
pub fn bind(name: &str) -> io::Result<(UnixDatagram, String)> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    let socket = UnixDatagram::bind_addr(&addr)?;
    socket.set_nonblocking(true)?;
    Ok((socket, format!("@{name}")))
}

/// Sends `message` to the socket named by `$NOTIFY_SOCKET` (a path, or an
/// abstract name starting with `@`). Errors are the caller's to log.
pub fn send_to(target: &str, message: &str) -> io::Result<()> {
    let addr = address(target)?;
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    socket.send_to_addr(message.as_bytes(), &addr)?;
    Ok(())
}

/// The mio token of the socket to our manager: just below the control
/// server's namespace, far above anything the services' sources reach.
pub const TOKEN: Token = Token(usize::MAX >> 8);

/// What tend owes its own manager: only the latest `STATUS=` (older ones
/// are coalesced away), and `READY=1` and `STOPPING=1`, which are never
/// dropped. Sent without blocking; when the manager's queue is full
/// (EAGAIN), the message waits and goes out when the socket is writable.
pub struct Upward {
    target: String,
    socket: Option<mio::net::UnixDatagram>,
    status: Option<String>,
    /// The last `STATUS=` sent: the same again is not sent (a service
    /// restarted at once leaves the summary as it was).
    sent: Option<String>,
    ready: bool,
    stopping: bool,
    /// The socket is registered for WRITABLE with mio.
    waiting: bool,
}

impl Upward {
    pub fn new(target: String) -> Upward {
        Upward {
            target,
            socket: None,
            status: None,
            sent: None,
            ready: false,
            stopping: false,
            waiting: false,
        }
    }

    /// Owes one more message, merged with what is still owed; sent by the
    /// next [`Upward::flush`] (the loop's, once a turn: a start of 5000
    /// services changes the summary 3000 times in one turn, and each
    /// datagram wakes the manager).
    pub fn owe(&mut self, ready: bool, status: &str, stopping: bool) {
        self.status = (self.sent.as_deref() != Some(status)).then(|| status.to_string());
        self.ready |= ready;
        self.stopping |= stopping;
    }

    /// Sends what is owed, unless the manager's queue is still full: then
    /// waits for [`TOKEN`] to become writable.
    pub fn flush(&mut self, registry: &Registry) {
        let Some(message) = self.message() else {
            return;
        };
        let result = self
            .connect(registry)
            .and_then(|socket| socket.send(message.as_bytes()));
        match result {
            Ok(_) => {
                if let Some(status) = self.status.take() {
                    self.sent = Some(status);
                }
                self.ready = false;
                self.stopping = false;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tracing::debug!("our manager's queue is full, sending when it has room");
            }
            Err(e) => {
                // No manager there (yet): try again with the next message.
                tracing::debug!("cannot notify our manager at {}: {e}", self.target);
                self.forget(registry);
            }
        }
    }

    fn message(&self) -> Option<String> {
        let mut message = String::new();
        if let Some(status) = &self.status {
            message.push_str(&format!("STATUS={status}\n"));
        }
        if self.ready {
            message.push_str("READY=1\n");
        }
        if self.stopping {
            message.push_str("STOPPING=1\n");
        }
        (!message.is_empty()).then_some(message)
    }

    /// A socket connected to the manager's, registered for WRITABLE: a
    /// connected datagram socket polls writable once the peer's queue has
    /// room again.
    fn connect(&mut self, registry: &Registry) -> io::Result<&mio::net::UnixDatagram> {
        if self.socket.is_none() {
            let socket = UnixDatagram::unbound()?;
            socket.connect_addr(&address(&self.target)?)?;
            socket.set_nonblocking(true)?;
            let mut socket = mio::net::UnixDatagram::from_std(socket);
            registry.register(&mut socket, TOKEN, Interest::WRITABLE)?;
            self.waiting = true;
            self.socket = Some(socket);
        }
        self.socket
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    fn forget(&mut self, registry: &Registry) {
        if let Some(mut socket) = self.socket.take() {
            if self.waiting {
                let _ = registry.deregister(&mut socket);
            }
        }
        self.waiting = false;
    }
}

fn address(target: &str) -> io::Result<SocketAddr> {
    match target.strip_prefix('@') {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
        None => SocketAddr::from_pathname(target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_tend_acts_on() {
        let got = parse(b"READY=1\nSTATUS=serving 3 clients\nMAINPID=42\nSTOPPING=1\nREADY=0\nWATCHDOG=1");
        assert_eq!(
            got,
            [
                Notice::Ready,
                Notice::Status("serving 3 clients".into()),
                Notice::Stopping,
                Notice::Watchdog
            ]
        );
        let got = parse(b"WATCHDOG=trigger\nEXTEND_TIMEOUT_USEC=1500000\nEXTEND_TIMEOUT_USEC=x\nWATCHDOG=0");
        assert_eq!(
            got,
            [
                Notice::WatchdogTrigger,
                Notice::ExtendTimeout(Duration::from_millis(1500))
            ]
        );
        let got = parse(b"WATCHDOG_USEC=250000\nWATCHDOG_USEC=-1\nWATCHDOG_USEC=0");
        assert_eq!(
            got,
            [
                Notice::WatchdogUsec(Duration::from_millis(250)),
                Notice::WatchdogUsec(Duration::ZERO)
            ]
        );
        assert!(parse(b"\xff\xfe garbage").is_empty());
    }

    #[test]
    fn round_trip_over_an_abstract_socket() {
        let name = format!("tend-test-notify-{}", std::process::id());
        let (socket, env) = bind(&name).unwrap();
        send_to(&env, "READY=1\nSTATUS=up").unwrap();
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        assert_eq!(parse(&buf[..n]), [Notice::Ready, Notice::Status("up".into())]);
    }

    #[test]
    fn owed_messages_wait_for_room_and_coalesce() {
        let name = format!("tend-test-upward-{}", std::process::id());
        let (manager, target) = bind(&name).unwrap();
        let filler = UnixDatagram::unbound().unwrap();
        filler.set_nonblocking(true).unwrap();
        let addr = address(&target).unwrap();
        let mut filled = 0;
        while filler.send_to_addr(b"FILLER=1", &addr).is_ok() {
            filled += 1;
        }
        let mut poll = mio::Poll::new().unwrap();
        let mut up = Upward::new(target);
        up.owe(false, "0 of 2 services up", false);
        up.flush(poll.registry());
        up.owe(true, "2 of 2 services up", false);
        up.flush(poll.registry());
        assert_eq!(up.message().as_deref(), Some("STATUS=2 of 2 services up\nREADY=1\n"));
        let mut buf = [0u8; 256];
        let mut events = mio::Events::with_capacity(4);
        // The manager reads: the socket becomes writable and the loop flushes.
        for _ in 0..filled {
            manager.recv(&mut buf).unwrap();
        }
        poll.poll(&mut events, Some(std::time::Duration::from_secs(5))).unwrap();
        assert!(events.iter().any(|e| e.token() == TOKEN && e.is_writable()));
        up.flush(poll.registry());
        assert_eq!(up.message(), None);
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=2 of 2 services up\nREADY=1\n");
        // A restart within one turn leaves the summary as sent: nothing.
        up.owe(false, "1 of 2 services up", false);
        up.owe(false, "2 of 2 services up", false);
        assert_eq!(up.message(), None);
        up.owe(false, "1 of 2 services up", false);
        assert_eq!(up.message().as_deref(), Some("STATUS=1 of 2 services up\n"));
    }

    #[test]
    fn what_one_turn_owes_goes_out_as_one_message() {
        let name = format!("tend-test-upward-turn-{}", std::process::id());
        let (manager, target) = bind(&name).unwrap();
        manager.set_nonblocking(true).unwrap();
        let poll = mio::Poll::new().unwrap();
        let mut up = Upward::new(target);
        for up_now in 0..=3 {
            up.owe(up_now == 3, &format!("{up_now} of 3 services up"), false);
        }
        up.flush(poll.registry());
        let mut buf = [0u8; 256];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=3 of 3 services up\nREADY=1\n");
        assert!(manager.recv(&mut buf).is_err(), "more than one message");
        // Nothing owed: nothing sent.
        up.flush(poll.registry());
        assert!(manager.recv(&mut buf).is_err());
    }
}
