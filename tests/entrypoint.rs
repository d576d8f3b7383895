//! `tend -- CMD` without namespaces: the command line, and subreaper mode.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn tend_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(tend());
    cmd.args(args).env_remove("TEND_LOG");
    cmd
}

#[test]
fn usage_errors_exit_2_and_start_nothing() {
    let dir = TempDir::new("usage");
    let marker = dir.path("started");
    let touch = format!("touch {}", marker.display());
    for args in [
        vec!["--bogus", "--", "sh", "-c", &touch],
        vec![],
        vec!["-p", "SIGNOPE", "--", "sh", "-c", &touch],
    ] {
        let out = output(&mut tend_cmd(&args));
        assert_eq!(out.status.code(), Some(2), "tend {args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("error:"),
            "tend {args:?}"
        );
    }
    assert!(!marker.exists(), "a usage error started the command");
}

/// On a terminal, the command gets the foreground (as under tini): its
/// process group is the terminal's, so Ctrl-C reaches it. `script` (Debian's
/// bsdutils) gives tend a terminal of its own. The SIGTTOU the child ignores
/// to take it is not left ignored: under `tend --` (every disposition
/// reset) and under `tend init -- CMD` (only those tend found changed).
#[test]
fn the_command_takes_the_terminal_s_foreground() {
    let units = TempDir::new("terminal-units");
    std::fs::create_dir(units.path("units")).unwrap();
    let report = "cut -d\" \" -f5,8 /proc/$$/stat; grep ^SigIgn: /proc/$$/status";
    let tend = tend().display().to_string();
    let init = format!("{tend} init --units {} --no-socket", units.path("units").display());
    for how in [tend.clone(), init] {
        let inner = format!("{how} -- sh -c '{report}'");
        let out = output(
            Command::new("script")
                .args(["-qec", &inner, "/dev/null"])
                .env_remove("TEND_LOG"),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{how}: {stdout}");
        assert!(stdout.contains("SigIgn:\t0000000000000000"), "{how}: {stdout:?}");
        // The report's first line: two numbers (tend's own log lines may
        // come before it on the terminal).
        let ids: Vec<&str> = stdout
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.len() == 2 && fields.iter().all(|f| f.bytes().all(|b| b.is_ascii_digit())))
            .unwrap_or_default();
        assert_eq!(ids.len(), 2, "{how}: {stdout:?}");
        assert_eq!(
            ids[0], ids[1],
            "{how}: process group against the terminal's foreground: {stdout:?}"
        );
    }
}

/// `tend boot` reads its own arguments without tend's whole command line;
/// what that short way does not take (help, errors, tend's flags after
/// `boot`) still gets clap's usual answer, naming `tend boot`.
#[test]
fn boot_usage_errors_and_help_are_the_usual_ones() {
    let out = output(&mut tend_cmd(&["boot", "--bogus", "/nonexistent"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: unexpected argument '--bogus'"), "{stderr}");
    assert!(stderr.contains("Usage: tend boot [OPTIONS] <ROOTFS>"), "{stderr}");
    let out = output(&mut tend_cmd(&["boot", "--help"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("Isolation: root inside is not root outside"),
        "{stdout}"
    );
    // A global flag after `boot`: parsed, then the rootfs is refused.
    let out = output(&mut tend_cmd(&["boot", "-v", "/nonexistent", "--", "true"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent"), "{stderr}");
}

#[test]
fn a_duration_too_long_is_a_usage_error_naming_the_option() {
    let out = output(&mut tend_cmd(&["--grace", "18446744073709551615s", "--", "true"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--grace"), "{stderr}");
    assert!(stderr.contains("longer than 100years"), "{stderr}");
}

/// tend starts at a C `main` of its own (no Rust runtime start-up): it
/// still opens /dev/null on a closed standard fd before anything of its
/// own can take that number, and ignores SIGPIPE itself.
#[test]
fn closed_standard_fds_are_dev_null_and_sigpipe_is_ignored() {
    let script =
        r#"exec "$0" -- sh -c 'readlink /proc/self/fd/0 >&3; grep ^SigIgn: /proc/$PPID/status >&3' 3>&1 <&- 2>&-"#;
    let out = output(
        Command::new("sh")
            .args(["-c", script, &tend().display().to_string()])
            .env_remove("TEND_LOG"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("/dev/null"), "{stdout}");
    let ignored = lines.next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or("");
    let mask = u64::from_str_radix(ignored, 16).unwrap_or(0);
    assert_ne!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{stdout}");
}

#[test]
fn exit_code_passes_through() {
    let out = output(&mut tend_cmd(&["--", "sh", "-c", "exit 42"]));
    assert_eq!(out.status.code(), Some(42));
}

#[test]
fn a_command_without_separator_runs_as_under_tini() {
    let out = output(&mut tend_cmd(&["sh", "-c", "exit 3"]));
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let out = output(&mut tend_cmd(&["-e", "4", "sh", "-c", "exit 4"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn tini_verbosity_sets_the_log_level() {
    let quiet = output(tend_cmd(&["true"]).env("TINI_VERBOSITY", "1"));
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    let loud = output(tend_cmd(&["true"]).env("TINI_VERBOSITY", "3"));
    let log = String::from_utf8_lossy(&loud.stderr);
    assert!(log.contains("started true as pid"), "{log}");
}

#[test]
fn subreaper_when_not_pid1() {
    // The inner shell exits at once; its background sleep is orphaned and
    // must be reparented to tend (our child), not to the host's init.
    // The reader awaits the inner shell's exit (until then it is the
    // sleep's parent), then prints who adopted the sleep.
    let script = "sh -c 'sleep 1000 & echo $! $$ > /dev/stderr' 2>&1 | { read pid sh; \
         while [ \"$(cut -d' ' -f4 /proc/$pid/stat)\" = \"$sh\" ]; do sleep 0.01; done; \
         cut -d' ' -f4 /proc/$pid/stat; kill $pid; }";
    let mut child = tend_cmd(&["-v", "--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tend_pid = child.id();
    let code = exit_code_within(&mut child, Duration::from_secs(20));
    let out = child.wait_with_output().unwrap();
    assert_eq!(code, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), tend_pid.to_string());
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(log.matches("registered as child subreaper").count(), 1, "{log}");
}

#[test]
fn parent_death_signal_stops_tend() {
    // The shell starts tend in the background and waits on its stdin; when
    // the test closes that, the shell (tend's parent) exits, the kernel sends
    // tend SIGTERM (-p), tend forwards it and exits.
    let script = format!("{} -p TERM -- sleep 1000 & echo $!; read _; exit 0", tend().display());
    let mut shell = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(shell.stdout.take().unwrap()), &mut line).unwrap();
    let pid: i32 = line.trim().parse().unwrap();
    await_true("tend's sleep", Duration::from_secs(20), || {
        !children(pid as u32).is_empty()
    });
    drop(shell.stdin.take());
    assert_eq!(exit_code_within(&mut shell, Duration::from_secs(20)), 0);
    // SAFETY: signal 0 only asks whether the process exists.
    await_true(
        "tend to exit",
        Duration::from_secs(20),
        || unsafe { libc::kill(pid, 0) } != 0,
    );
}
