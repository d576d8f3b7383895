//! tend's log lines as journald's native messages, sent without ever
//! blocking: PID 1 must not stall on a journald that does not read (the
//! kernel queues only `net.unix.max_dgram_qlen` datagrams, 10 by default).
//! A line that does not fit is dropped and counted, and the count is
//! reported with the next line that goes through.
//!
//! The socket is connected once, at start: a machine's PID 1, cloned from
//! its launcher, keeps it after the pivot into a rootfs where journald's
//! path does not exist, and services never see it (it is close-on-exec).

use std::fmt::{self, Write as _};
use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Level};

/// journald's socket for native messages (sd_journal_send(3)).
const SOCKET: &str = "/run/systemd/journal/socket";

/// A message larger than this is cut: a datagram must fit the socket's
/// send buffer, and no line of tend's comes near it.
const MAX_MESSAGE: usize = 32 * 1024;

pub struct Journal {
    socket: UnixDatagram,
    /// `SYSLOG_IDENTIFIER=tend` and `TEND_MACHINE=NAME`, encoded once.
    fixed: Vec<u8>,
    dropped: AtomicU64,
}

impl Journal {
    /// Connected to journald's socket, or the reason it is not reachable.
    pub fn connect(machine: Option<&str>) -> io::Result<Journal> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(SOCKET)?;
        socket.set_nonblocking(true)?;
        let mut fixed = Vec::new();
        put(&mut fixed, "SYSLOG_IDENTIFIER", b"tend");
        if let Some(name) = machine {
            put(&mut fixed, super::MACHINE_FIELD, name.as_bytes());
        }
        Ok(Journal {
            socket,
            fixed,
            dropped: AtomicU64::new(0),
        })
    }

    /// Sends one message; a full queue or a gone journald drops it.
    fn send(&self, level: Level, message: &str, fields: &[(String, String)]) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        let mut text = String::new();
        let message = if dropped > 0 {
            let _ = write!(
                text,
                "{message} ({dropped} earlier lines dropped: journald did not read them)"
            );
            &text
        } else {
            message
        };
        let data = encode(&self.fixed, priority(level), message, fields);
        match self.socket.send(&data) {
            Ok(_) => self.dropped.store(0, Ordering::Relaxed),
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Journal {
    /// One event as one message.
    pub fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.send(*event.metadata().level(), &fields.message, &fields.others);
    }
}

/// syslog priorities: tend's info lines are notices (worth keeping), as
/// tracing-journald maps them.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => b'3',
        Level::WARN => b'4',
        Level::INFO => b'5',
        Level::DEBUG => b'6',
        Level::TRACE => b'7',
    }
}

/// One native message: the fixed fields, PRIORITY, MESSAGE, then the
/// event's own fields under upper-case names.
fn encode(fixed: &[u8], priority: u8, message: &str, fields: &[(String, String)]) -> Vec<u8> {
    let mut data = fixed.to_vec();
    put(&mut data, "PRIORITY", &[priority]);
    let cut = floor_char_boundary(message, MAX_MESSAGE);
    put(&mut data, "MESSAGE", message.as_bytes().get(..cut).unwrap_or_default());
    for (name, value) in fields {
        let name = field_name(name);
        if !name.is_empty() {
            put(&mut data, &name, value.as_bytes());
        }
    }
    data
}

/// `NAME=value\n`, or for a value with a newline the binary form:
/// `NAME\n`, its length as 64-bit little-endian, the value, `\n`.
fn put(data: &mut Vec<u8>, name: &str, value: &[u8]) {
    data.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        data.push(b'\n');
        data.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        data.push(b'=');
    }
    data.extend_from_slice(value);
    data.push(b'\n');
}

/// journald takes upper-case letters, digits and `_`, not first a digit
/// or `_` (those are its own trusted fields).
fn field_name(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    name.trim_start_matches(|c: char| c == '_' || c.is_ascii_digit()).into()
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The event's message and its other fields, as text.
#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}"));
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.others.push((field.name().to_string(), value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_message_fields() {
        let mut fixed = Vec::new();
        put(&mut fixed, "SYSLOG_IDENTIFIER", b"tend");
        let fields = [("service".to_string(), "web".to_string()), ("_x".into(), "y".into())];
        let data = encode(&fixed, b'4', "two\nlines", &fields);
        let mut expected = b"SYSLOG_IDENTIFIER=tend\nPRIORITY=4\nMESSAGE\n".to_vec();
        expected.extend_from_slice(&9u64.to_le_bytes());
        expected.extend_from_slice(b"two\nlines\nSERVICE=web\nX=y\n");
        assert_eq!(data, expected);
    }

    #[test]
    fn field_names_journald_takes() {
        assert_eq!(field_name("exit.code"), "EXIT_CODE");
        assert_eq!(field_name("__9a"), "A");
        assert_eq!(field_name("_"), "");
    }

    #[test]
    fn long_messages_are_cut_on_a_character() {
        let text = "é".repeat(MAX_MESSAGE);
        let data = encode(&[], b'5', &text, &[]);
        assert!(data.len() < MAX_MESSAGE + 64);
        assert!(std::str::from_utf8(&data).is_ok());
    }
}
