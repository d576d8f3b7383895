//! tend's own log: one line per notable event, to journald when our stderr
//! is a journal stream (tend started by systemd), to stderr otherwise.
//! journald gets native messages (priority, fields) through a socket of
//! tend's own that never blocks (see `journal`).

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::os::fd::AsFd;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{span, Event, Level, Metadata, Subscriber};

mod journal;

/// Parses a level name as given to `--log-level` or `TEND_LOG`.
pub fn parse_level(text: &str) -> Option<LevelFilter> {
    match text.trim().to_ascii_lowercase().as_str() {
        "off" => Some(LevelFilter::OFF),
        "error" => Some(LevelFilter::ERROR),
        "warn" | "warning" => Some(LevelFilter::WARN),
        "info" => Some(LevelFilter::INFO),
        "debug" => Some(LevelFilter::DEBUG),
        "trace" => Some(LevelFilter::TRACE),
        _ => None,
    }
}

/// `base` raised by `verbose` steps (`-v`, `-vv`, ...).
pub fn raise(base: LevelFilter, verbose: u8) -> LevelFilter {
    const ORDER: [LevelFilter; 6] = [
        LevelFilter::OFF,
        LevelFilter::ERROR,
        LevelFilter::WARN,
        LevelFilter::INFO,
        LevelFilter::DEBUG,
        LevelFilter::TRACE,
    ];
    let at = ORDER.iter().position(|l| *l == base).unwrap_or(2);
    ORDER[(at + verbose as usize).min(ORDER.len() - 1)]
}

/// The journal field that names the machine a `tend boot` line comes from.
pub const MACHINE_FIELD: &str = "TEND_MACHINE";

/// Installs the global logger. Never fails: without journald, stderr.
pub fn init(level: LevelFilter) {
    init_for(level, None);
}

/// As [`init`]; in the journal, every line also carries
/// `TEND_MACHINE=machine` (`journalctl TEND_MACHINE=NAME`).
pub fn init_for(level: LevelFilter, machine: Option<&str>) {
    let journal = stderr_is_journal()
        .then(|| journal::Journal::connect(machine).ok())
        .flatten();
    // Only fails if a logger is already installed; keep that one.
    drop(tracing::subscriber::set_global_default(Logger { level, journal }));
}

/// tend's subscriber: every event at or above the level is one line, to
/// journald or to stderr. tend opens no spans, so none is kept (a span
/// gets a placeholder id).
struct Logger {
    level: LevelFilter,
    journal: Option<journal::Journal>,
}

impl Subscriber for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.level
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.level)
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        match &self.journal {
            Some(journal) => journal.event(event),
            // Straight to stderr, or through the init loop's queue once it
            // started; one write per line.
            None => drop(crate::runtime::output::LogWriter.write_all(plain(event).as_bytes())),
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// systemd sets `JOURNAL_STREAM=DEV:INODE` for the stream it connected to
/// stderr; it is ours only if stderr still is that stream.
fn stderr_is_journal() -> bool {
    let Some(expected) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(std::io::stderr().as_fd()) else {
        return false;
    };
    expected.to_str() == Some(&format!("{}:{}", stat.st_dev, stat.st_ino))
}

/// `tend: message`, `tend: warning: message`: the shape of a Unix tool's
/// diagnostics, which also reads well between a service's lines. Other
/// fields follow the message as ` name=value` (the value's `Debug`).
fn plain(event: &Event<'_>) -> String {
    let level = match *event.metadata().level() {
        Level::ERROR => "error: ",
        Level::WARN => "warning: ",
        Level::DEBUG => "debug: ",
        Level::TRACE => "trace: ",
        Level::INFO => "",
    };
    let mut line = Line(format!("tend: {level}"), true);
    event.record(&mut line);
    line.0.push('\n');
    line.0
}

/// The line so far, and whether no field is in it yet.
struct Line(String, bool);

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.record_debug(field, &format_args!("{value}")),
            _ => self.record_debug(field, &value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !std::mem::take(&mut self.1) {
            self.0.push(' ');
        }
        let _ = match field.name() {
            "message" => write!(self.0, "{value:?}"),
            name => write!(self.0, "{}={value:?}", name.strip_prefix("r#").unwrap_or(name)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_level_then_the_message_then_the_fields() {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = lines.clone();
        let logger = Catch(seen);
        tracing::subscriber::with_default(logger, || {
            let name = "web";
            tracing::warn!(service = name, ok = true, "{name} is down");
            tracing::info!(service = %name, "plain");
            tracing::error!(input = ?Some(3), "x");
        });
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "tend: warning: web is down service=\"web\" ok=true\n",
                "tend: plain service=web\n",
                "tend: error: x input=Some(3)\n",
            ]
        );
    }

    /// Lines as `Logger` writes them, kept.
    struct Catch(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl Subscriber for Catch {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, event: &Event<'_>) {
            self.0.lock().unwrap().push(plain(event));
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }

    #[test]
    fn levels_and_verbosity() {
        assert_eq!(parse_level("Debug"), Some(LevelFilter::DEBUG));
        assert_eq!(parse_level("loud"), None);
        assert_eq!(raise(LevelFilter::WARN, 1), LevelFilter::INFO);
        assert_eq!(raise(LevelFilter::WARN, 9), LevelFilter::TRACE);
    }
}
