//! Signal names and numbers: `SIGTERM`, `TERM`, `15`, `SIGRTMIN+3`, `RTMIN+3`.
//!
//! Pure: signals are plain `i32` numbers here because the realtime ones have
//! no `nix::sys::signal::Signal` variant.

/// The classic signals by name (without the `SIG` prefix), Linux numbering.
const NAMED: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// First realtime signal usable by programs: 34, as glibc programs (and
/// podman, systemd) number them. Fixed here, not asked of tend's own C
/// library: musl's is 35, and `SIGRTMIN+3` (halt) must still be 37.
pub fn rtmin() -> i32 {
    34
}

/// Last realtime signal (64 on Linux).
pub fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

/// The halt request of systemd-style managers (`SIGRTMIN+3`).
pub fn halt() -> i32 {
    rtmin() + 3
}

/// The signals tend passes on to the command it runs: what a container
/// runtime, a terminal or a user sends, and every realtime signal but the
/// halt request (which tend turns into SIGTERM itself).
pub fn forwarded() -> Vec<i32> {
    let classic = [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGTERM,
        libc::SIGWINCH,
        libc::SIGCONT,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGALRM,
        libc::SIGURG,
        libc::SIGVTALRM,
        libc::SIGPROF,
    ];
    let realtime = (rtmin()..=rtmax()).filter(|&s| s != halt());
    classic.into_iter().chain(realtime).collect()
}

/// Parses a signal given by name (`SIGTERM`, `term`, `RTMIN+3`, `SIGRTMAX-1`)
/// or number (`15`). Returns `None` for anything that is not a signal.
pub fn parse(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return (1..=rtmax()).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMED.iter().find(|(n, _)| *n == name) {
        return Some(n);
    }
    parse_realtime(name)
}

fn parse_realtime(name: &str) -> Option<i32> {
    let (base, rest) = if let Some(rest) = name.strip_prefix("RTMIN") {
        (rtmin(), rest)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        (rtmax(), rest)
    } else {
        return None;
    };
    let n = match rest.as_bytes().first() {
        None => base,
        Some(b'+') => base.checked_add(rest[1..].parse::<i32>().ok()?)?,
        Some(b'-') => base.checked_sub(rest[1..].parse::<i32>().ok()?)?,
        Some(_) => return None,
    };
    (rtmin()..=rtmax()).contains(&n).then_some(n)
}

/// The conventional name of a signal number (`SIGTERM`, `SIGRTMIN+3`), for
/// messages. Unknown numbers are shown as `signal N`.
pub fn name(sig: i32) -> String {
    if let Some((n, _)) = NAMED.iter().find(|(_, s)| *s == sig) {
        return format!("SIG{n}");
    }
    if (rtmin()..=rtmax()).contains(&sig) {
        return match sig - rtmin() {
            0 => "SIGRTMIN".to_string(),
            d => format!("SIGRTMIN+{d}"),
        };
    }
    format!("signal {sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_realtime() {
        assert_eq!(parse("SIGTERM"), Some(15));
        assert_eq!(parse("term"), Some(15));
        assert_eq!(parse("15"), Some(15));
        assert_eq!(parse("SIGRTMIN+3"), Some(37));
        assert_eq!(parse("RTMIN+3"), Some(37));
        assert_eq!(parse("37"), Some(37));
        // What podman and systemd send to halt, whatever tend's libc.
        assert_eq!(halt(), 37);
        assert_eq!(parse("RTMAX"), Some(64));
        assert_eq!(parse("SIGRTMAX-1"), Some(63));
        assert_eq!(parse("PWR"), Some(libc::SIGPWR));
    }

    #[test]
    fn rejects_what_is_no_signal() {
        for bad in ["", "0", "65", "-1", "SIGFOO", "RTMIN+40", "RTMIN3", "RTMAX+1"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for sig in (1..=31).chain(rtmin()..=rtmax()) {
            assert_eq!(parse(&name(sig)), Some(sig), "{sig}");
        }
        assert_eq!(name(37), "SIGRTMIN+3");
        assert_eq!(name(9), "SIGKILL");
    }
}
