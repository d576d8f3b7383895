//! `tend -- CMD` as PID 1 of a fresh PID + mount namespace. Needs root.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

/// A shell script that records every signal named in `signals` into `log`
/// (one name a line) and says `ready` once its traps are set.
fn recorder(log: &std::path::Path, signals: &[&str]) -> String {
    let traps: String = signals
        .iter()
        .map(|s| format!("trap 'echo {s} >> {}' {s}; ", log.display()))
        .collect();
    format!(
        "{traps} echo ready >> {}; sleep 1000 & s=$!; while :; do wait $s; done",
        log.display()
    )
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn orphaned_grandchildren_are_reaped_root() {
    // 50 orphans whose parents exit at once; then wait (deadline) until no
    // process of the namespace is a zombie. Without reaping this fails.
    let script = r#"
        for i in $(seq 50); do sh -c 'sleep 0.05 & exit 0'; done
        for i in $(seq 1000); do
            pgrep -x sleep >/dev/null || zombies=$(grep -l ') Z ' /proc/[0-9]*/stat 2>/dev/null | wc -l)
            [ "${zombies:-1}" = 0 ] && exit 0
            zombies=
            sleep 0.01
        done
        grep ') Z ' /proc/[0-9]*/stat >&2; exit 1"#;
    let out = output(&mut tend_as_pid1(&["--", "sh", "-c", script]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "zombies left: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn forwarded_signals_reach_the_child_root() {
    let dir = TempDir::new("forward");
    let log = dir.path("log");
    let names = [
        "HUP", "INT", "QUIT", "USR1", "USR2", "TERM", "WINCH", "CONT", "TSTP", "TTIN", "TTOU", "ALRM",
    ];
    let mut unshare = tend_as_pid1(&["--", "sh", "-c", &recorder(&log, &names)])
        .spawn()
        .unwrap();
    let tend = await_child(unshare.id());
    await_true("the child's traps", LIMIT, || {
        lines(&log).contains(&"ready".to_string())
    });
    for name in names {
        send(tend, tend::signal::parse(name).unwrap());
        await_true(&format!("the child to record {name}"), LIMIT, || {
            lines(&log).contains(&name.to_string())
        });
    }
    // The child killed by SIGKILL: tend exits 137.
    send(await_child(tend), libc::SIGKILL);
    assert_eq!(exit_code_within(&mut unshare, LIMIT), 137);
}

#[test]
fn halt_and_power_fail_stop_the_child_with_sigterm_root() {
    for signal in ["SIGRTMIN+3", "PWR"] {
        let dir = TempDir::new("halt");
        let log = dir.path("log");
        let mut unshare = tend_as_pid1(&["--", "sh", "-c", &recorder(&log, &["TERM"])])
            .spawn()
            .unwrap();
        let tend = await_child(unshare.id());
        await_true("the child's traps", LIMIT, || {
            lines(&log).contains(&"ready".to_string())
        });
        send(tend, tend::signal::parse(signal).unwrap());
        await_true("SIGTERM at the child", LIMIT, || {
            lines(&log).contains(&"TERM".to_string())
        });
        send(await_child(tend), libc::SIGKILL);
        assert_eq!(exit_code_within(&mut unshare, LIMIT), 137);
    }
}

#[test]
fn group_mode_reaches_a_grandchild_root() {
    let dir = TempDir::new("group");
    let log = dir.path("log");
    // The grandchild runs in the child's process group; the child survives
    // USR1 too (a trap, not an ignore, which the grandchild would inherit).
    let inner = recorder(&log, &["USR1"]);
    let script = format!(
        "trap true USR1; sh -c \"{}\" & until wait; do :; done",
        inner.replace('"', "\\\"")
    );
    let mut unshare = tend_as_pid1(&["-g", "--", "sh", "-c", &script]).spawn().unwrap();
    let tend = await_child(unshare.id());
    await_true("the grandchild's traps", LIMIT, || {
        lines(&log).contains(&"ready".to_string())
    });
    send(tend, libc::SIGUSR1);
    await_true("the grandchild to record USR1", LIMIT, || {
        lines(&log).contains(&"USR1".to_string())
    });
    send(tend, libc::SIGTERM);
    let code = exit_code_within(&mut unshare, LIMIT);
    assert_eq!(code, 143, "the child dies of the forwarded SIGTERM");
}

#[test]
fn tini_kill_process_group_reaches_a_grandchild_root() {
    let dir = TempDir::new("tini-group");
    let log = dir.path("log");
    let inner = recorder(&log, &["USR1"]);
    let script = format!(
        "trap true USR1; sh -c \"{}\" & until wait; do :; done",
        inner.replace('"', "\\\"")
    );
    // -g from the environment, as under tini.
    let unshare = tend_as_pid1(&["--", "sh", "-c", &script])
        .env("TINI_KILL_PROCESS_GROUP", "1")
        .spawn()
        .unwrap();
    let mut unshare = KillOnDrop(unshare);
    let unshare = &mut unshare.0;
    let tend = await_child(unshare.id());
    await_true("the grandchild's traps", LIMIT, || {
        lines(&log).contains(&"ready".to_string())
    });
    send(tend, libc::SIGUSR1);
    await_true("the grandchild to record USR1", LIMIT, || {
        lines(&log).contains(&"USR1".to_string())
    });
    send(tend, libc::SIGTERM);
    assert_eq!(exit_code_within(unshare, LIMIT), 143);
}

#[test]
fn pid1_named_init_ignores_arguments_meant_for_another_init_root() {
    // As `systemd-nspawn -b -- single` or a kernel would start /sbin/init.
    // A tmpfs on /run (in the test's own mount namespace) for the default
    // control socket.
    let dir = TempDir::new("as-init");
    let init = dir.path("init");
    std::os::unix::fs::symlink(tend(), &init).unwrap();
    let log = dir.path("tend.log");
    let script = format!("mount -t tmpfs tmpfs /run && exec {} single", init.display());
    let unshare = std::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .env_remove("TEND_LOG")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut unshare = KillOnDrop(unshare);
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    await_true("init to boot", LIMIT, || {
        text().contains("ignoring the arguments [\"single\"]")
    });
    let tend = await_child(unshare.0.id());
    // Its loop is up (signals blocked and read): a SIGTERM cannot be lost.
    await_idle(tend);
    send(tend, libc::SIGTERM);
    assert_eq!(exit_code_within(&mut unshare.0, LIMIT), 0, "{}", text());
}

#[test]
fn exit_codes_root() {
    let cases: [(&[&str], i32); 6] = [
        (&["--", "true"], 0),
        (&["--", "sh", "-c", "exit 3"], 3),
        (&["sh", "-c", "exit 3"], 3),
        (&["--", "sh", "-c", "kill -KILL $$"], 137),
        (&["-e", "3", "--", "sh", "-c", "exit 3"], 0),
        (&["-e", "143", "-e", "4", "--", "sh", "-c", "kill -TERM $$"], 0),
    ];
    for (args, expected) in cases {
        let out = output(&mut tend_as_pid1(args));
        assert_eq!(out.status.code(), Some(expected), "tend {args:?}");
    }
}

#[test]
fn sigterm_to_pid1_gives_143_root() {
    let mut unshare = tend_as_pid1(&["--", "sleep", "1000"]).spawn().unwrap();
    let tend = await_child(unshare.id());
    await_child(tend);
    send(tend, libc::SIGTERM);
    assert_eq!(exit_code_within(&mut unshare, LIMIT), 143);
}

#[test]
fn exec_failures_give_127_and_126_root() {
    let out = output(&mut tend_as_pid1(&["--", "/nope"]));
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "tend: cannot execute /nope: No such file or directory"
    );
    let dir = TempDir::new("noexec");
    let file = dir.path("data");
    std::fs::write(&file, "not a program").unwrap();
    let out = output(&mut tend_as_pid1(&["--", file.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(126));
    let expected = format!("tend: cannot execute {}: Permission denied", file.display());
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), expected);
}

#[test]
fn strays_are_stopped_after_the_child_exits_root() {
    // A stray that honours SIGTERM: gone at once, long before the grace.
    let mut unshare = tend_as_pid1(&["-v", "--grace", "60s", "--", "sh", "-c", "sleep 1000 & exit 5"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(exit_code_within(&mut unshare, LIMIT), 5);
    // A stray that ignores SIGTERM gets SIGKILL after the grace.
    let script = "sh -c 'trap \"\" TERM; sleep 1000' & sleep 0.2; exit 6";
    let out = output(tend_as_pid1(&["-v", "--grace", "300ms", "--", "sh", "-c", script]).stderr(Stdio::piped()));
    assert_eq!(out.status.code(), Some(6));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("sending SIGTERM to"), "{log}");
    assert!(log.contains("sending SIGKILL to"), "{log}");
}

#[test]
fn child_gets_no_fd_of_tend_root() {
    // What the child sees is exactly what tend was given (tini passes
    // inherited fds on too): none of tend's own epoll, pipes or sockets.
    let script = "for fd in /proc/$$/fd/*; do echo \"${fd##*/} $(readlink $fd)\"; done";
    let direct = output(
        std::process::Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::piped()),
    );
    let under_tend = output(tend_as_pid1(&["--", "sh", "-c", script]).stdout(Stdio::piped()));
    assert_eq!(under_tend.status.code(), Some(0));
    // `pipe:[1234]` -> `pipe`: the pipes differ from run to run, their kind not.
    let kinds = |out: &[u8]| -> String {
        let text = String::from_utf8_lossy(out);
        text.lines()
            .map(|l| l.split(":[").next().unwrap_or(l).to_string() + "\n")
            .collect()
    };
    let (direct, under_tend) = (kinds(&direct.stdout), kinds(&under_tend.stdout));
    assert!(direct.contains("0 /dev/null"), "{direct}");
    assert_eq!(under_tend, direct);
}

/// A `SigXxx:` mask of /proc/PID/status.
fn mask(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn pid1_reads_signals_from_a_signalfd_root() {
    // No handler for what it forwards or reaps: blocked, read from a
    // signalfd. Blocked signals still reach PID 1 of a namespace from outside.
    let mut unshare = KillOnDrop(tend_as_pid1(&["--", "sleep", "1000"]).spawn().unwrap());
    let tend = await_child(unshare.0.id());
    let sleep = await_child(tend);
    // Between fork and exec the child still has tend's mask.
    await_true("the child to exec sleep", LIMIT, || {
        std::fs::read_to_string(format!("/proc/{sleep}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    let bits = [libc::SIGTERM, libc::SIGCHLD, libc::SIGUSR1, libc::SIGRTMIN() + 5]
        .iter()
        .fold(0u64, |acc, sig| acc | 1 << (sig - 1));
    assert_eq!(mask(tend, "SigCgt:") & bits, 0, "handlers in PID 1");
    assert_eq!(mask(tend, "SigBlk:") & bits, bits, "signals not blocked in PID 1");
    assert_eq!(mask(sleep, "SigBlk:"), 0, "the child's mask");
    send(tend, libc::SIGTERM);
    assert_eq!(exit_code_within(&mut unshare.0, LIMIT), 143);
}

#[test]
fn no_wakeups_while_idle_root() {
    let mut unshare = tend_as_pid1(&["--", "sleep", "1000"]).spawn().unwrap();
    let tend = await_child(unshare.id());
    await_child(tend);
    await_idle(tend);
    let before = context_switches(tend);
    // The measurement window itself, not a wait for a condition.
    std::thread::sleep(Duration::from_secs(2));
    let after = context_switches(tend);
    assert_eq!(after - before, 0, "PID 1 woke up while idle");
    send(tend, libc::SIGTERM);
    assert_eq!(exit_code_within(&mut unshare, LIMIT), 143);
}
