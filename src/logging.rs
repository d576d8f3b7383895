//! tend's own log: one line per notable event, to journald when our stderr
//! is a journal stream (tend started by systemd), to stderr otherwise.
//! journald gets native messages (priority, fields) through a socket of
//! tend's own that never blocks (see `journal`).

use std::fmt;
use std::os::fd::AsFd;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

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
    let registry = tracing_subscriber::registry().with(level);
    let journal = stderr_is_journal()
        .then(|| journal::Journal::connect(machine).ok())
        .flatten();
    let installed = match journal {
        Some(journal) => tracing::subscriber::set_global_default(registry.with(journal)),
        None => tracing::subscriber::set_global_default(registry.with(stderr_layer())),
    };
    // Only fails if a logger is already installed; keep that one.
    drop(installed);
}

fn stderr_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .event_format(Plain)
        // Straight to stderr, or through the init loop's queue once it started.
        .with_writer(|| crate::runtime::output::LogWriter)
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
/// diagnostics, which also reads well between a service's lines.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
            Level::INFO => "",
        };
        write!(writer, "tend: {level}")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_verbosity() {
        assert_eq!(parse_level("Debug"), Some(LevelFilter::DEBUG));
        assert_eq!(parse_level("loud"), None);
        assert_eq!(raise(LevelFilter::WARN, 1), LevelFilter::INFO);
        assert_eq!(raise(LevelFilter::WARN, 9), LevelFilter::TRACE);
    }
}
