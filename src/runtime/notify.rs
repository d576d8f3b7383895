//! The sd_notify protocol, both ways: a datagram socket per service on
//! which it may send `READY=1`, `STATUS=...`, `STOPPING=1`, and the messages
//! tend itself sends to its own manager when given `$NOTIFY_SOCKET`.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// One assignment from a notification datagram that tend acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Ready,
    Status(String),
    Stopping,
}

/// Parses a datagram: newline-separated `KEY=VALUE` assignments. Unknown
/// keys (MAINPID, WATCHDOG, ...) are ignored, as systemd ignores them when
/// they do not apply.
pub fn parse(datagram: &[u8]) -> Vec<Notice> {
    let text = String::from_utf8_lossy(datagram);
    text.lines()
        .filter_map(|line| match line.split_once('=')? {
            ("READY", "1") => Some(Notice::Ready),
            ("STOPPING", "1") => Some(Notice::Stopping),
            ("STATUS", status) => Some(Notice::Status(status.to_string())),
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
    let addr = match target.strip_prefix('@') {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes())?,
        None => SocketAddr::from_pathname(target)?,
    };
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    socket.send_to_addr(message.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_tend_acts_on() {
        let got = parse(b"READY=1\nSTATUS=serving 3 clients\nMAINPID=42\nSTOPPING=1\nREADY=0");
        assert_eq!(
            got,
            [
                Notice::Ready,
                Notice::Status("serving 3 clients".into()),
                Notice::Stopping
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
}
