//! `tend check DIR`: every kind of bad unit gives one line naming file, line
//! and column, and the exit code says whether all are valid.

mod common;

use std::process::Command;

use common::*;

fn check(units: &[(&str, &str)]) -> (i32, String) {
    let dir = TempDir::new("check");
    for (name, text) in units {
        std::fs::write(dir.path(&format!("{name}.toml")), text).unwrap();
    }
    let out = output(Command::new(tend()).arg("check").arg(&dir.0));
    let report = String::from_utf8_lossy(&out.stdout).replace(&format!("{}/", dir.0.display()), "");
    (out.status.code().unwrap_or(-1), report)
}

#[test]
fn valid_units_exit_0() {
    let (code, report) = check(&[
        (
            "web",
            "command = [\"sleep\", \"1\"]\nrestart = \"always\"\nstop-signal = \"QUIT\"\n",
        ),
        (
            "job",
            "type = \"oneshot\"\ncommand = \"true\"\nafter = [\"web\"]\nrestart-delay-max = \"1m30s\"\n",
        ),
    ]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report.trim(), "2 units valid, 0 invalid");
}

#[test]
fn each_kind_of_bad_input_is_named_with_its_place() {
    let cases: &[(&str, &str, &str)] = &[
        ("syntax", "command = [\n", "syntax.toml:1:12: "),
        (
            "misspelt",
            "command = \"true\"\nrestart_delay = \"1s\"\n",
            "misspelt.toml:2:1: unknown key \"restart_delay\", did you mean \"restart-delay\"?",
        ),
        ("wrongtype", "command = 42\n", "wrongtype.toml:1:11: "),
        ("nocommand", "restart = \"no\"\n", "nocommand.toml"),
        (
            "duration",
            "command = \"true\"\nstop-timeout = \"10 parsecs\"\n",
            "duration.toml:2:16: invalid duration \"10 parsecs\"",
        ),
        (
            "longduration",
            "command = \"true\"\nstop-timeout = \"18446744073709551615s\"\n",
            "longduration.toml:2:16: invalid duration \"18446744073709551615s\" for stop-timeout: longer than 100years",
        ),
        (
            "signal",
            "command = \"true\"\nstop-signal = \"SIGFOO\"\n",
            "signal.toml:2:15: unknown signal \"SIGFOO\"",
        ),
        (
            "user",
            "command = \"true\"\nuser = \"ghost\"\n",
            "user.toml:2:8: unknown user \"ghost\"",
        ),
        (
            "missing",
            "command = [\"/nope/x\"]\n",
            "missing.toml:1:11: command \"/nope/x\" does not exist",
        ),
        (
            "dep",
            "command = \"true\"\nafter = [\"nope\"]\n",
            "dep.toml:2:10: after names unknown unit \"nope\"",
        ),
        (
            "limit",
            "command = \"true\"\nlimits = { nofile = 999999999 }\n",
            "limit.toml:2:21: cannot raise the hard limit of nofile",
        ),
    ];
    for (name, text, expected) in cases {
        let (code, report) = check(&[(name, text)]);
        assert_eq!(code, 1, "{name}: {report}");
        assert!(
            report.lines().any(|l| l.starts_with(expected)),
            "{name}: expected {expected:?} in\n{report}"
        );
        assert!(
            report.trim_end().ends_with("0 units valid, 1 invalid"),
            "{name}: {report}"
        );
    }
}

#[test]
fn cycles_are_named_in_full() {
    let (code, report) = check(&[
        ("a", "command = \"true\"\nrequires = [\"b\"]\n"),
        ("b", "command = \"true\"\nafter = [\"a\"]\n"),
    ]);
    assert_eq!(code, 1);
    assert!(report.contains("a -> b -> a"), "{report}");
}

#[test]
fn a_missing_directory_is_one_clear_error() {
    let out = output(Command::new(tend()).args(["check", "/nonexistent/units"]));
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.starts_with("/nonexistent/units: cannot read unit directory: No such file or directory"),
        "{report}"
    );
}

/// A unit "file" that is a FIFO, `/dev/zero` or simply huge neither stalls
/// nor fills tend: each is one line, the good unit beside them loads.
#[test]
fn fifos_endless_and_huge_files_are_one_line_each() {
    let dir = TempDir::new("check-files");
    std::fs::write(dir.path("web.toml"), "command = [\"sleep\", \"1\"]\n").unwrap();
    nix::unistd::mkfifo(&dir.path("pipe.toml"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path("zero.toml")).unwrap();
    let huge = format!("command = \"true\"\n{}", "# padding\n".repeat(200_000));
    std::fs::write(dir.path("huge.toml"), huge).unwrap();
    let mut child = Command::new(tend())
        .arg("check")
        .arg(&dir.0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(exit_code_within(&mut child, std::time::Duration::from_secs(20)), 1);
    let mut report = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut report).unwrap();
    for name in ["zero.toml", "huge.toml"] {
        let line = format!("{}: cannot read unit file: larger than 1 MiB", dir.path(name).display());
        assert!(report.contains(&line), "{line:?} in {report}");
    }
    assert!(report.contains("pipe.toml"), "{report}");
    assert!(report.trim_end().ends_with("1 unit valid, 3 invalid"), "{report}");
}
