//! `tend ctl` against `tend init` as PID 1 of a fresh PID namespace: every
//! command over the control socket, exec with pipes and with a terminal,
//! who may connect, and clients that misbehave. Needs root.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

struct Tend {
    dir: TempDir,
    child: Option<Child>,
}

impl Tend {
    /// Writes the units, starts tend and waits until its socket answers.
    fn start(tag: &str, units: &[(&str, &str)]) -> Tend {
        let dir = TempDir::new(tag);
        std::fs::create_dir(dir.path("units")).unwrap();
        for (name, toml) in units {
            let toml = toml.replace("@DIR", &dir.0.display().to_string());
            std::fs::write(dir.path("units").join(format!("{name}.toml")), toml).unwrap();
        }
        let units = dir.path("units");
        let socket = dir.path("run/ctl.sock");
        let mut cmd = tend_as_pid1(&[
            "init",
            "--units",
            units.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
        ]);
        let log = std::fs::File::create(dir.path("tend.log")).unwrap();
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let child = cmd.spawn().unwrap();
        let tend = Tend {
            dir,
            child: Some(child),
        };
        await_true("the control socket", LIMIT, || tend.ctl(&["ping"]).status.success());
        tend
    }

    fn socket(&self) -> PathBuf {
        self.dir.path("run/ctl.sock")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(tend());
        cmd.arg("ctl").arg("--socket").arg(self.socket()).args(args);
        cmd
    }

    fn ctl(&self, args: &[&str]) -> Output {
        output(&mut self.cmd(args))
    }

    /// stdout of a command that must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(out.status.success(), "{args:?}: {}{}", text(&out.stderr), self.log());
        text(&out.stdout)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("tend.log")).unwrap_or_default()
    }

    fn lines(&self, name: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path(name)).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }
}

impl Drop for Tend {
    fn drop(&mut self) {
        // SIGTERM, so tend removes its cgroups from the host.
        if let Some(mut child) = self.child.take() {
            stop_pid1(&mut child, LIMIT);
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

const SLEEPER: &str = "command = \"sleep 1000\"\n";
const TICKER: &str = "command = \"i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done\"\n";

#[test]
fn every_command_round_trips_root() {
    let mut t = Tend::start("rt", &[("web", SLEEPER), ("tick", TICKER)]);
    assert_eq!(t.ok(&["ping"]), "pong\n");
    assert!(t.ok(&["version"]).starts_with("tend "));
    assert!(t.ok(&["--json", "version"]).contains("\"protocol\":1"));
    t.ok(&["wait", "web", "tick", "--for", "ready", "--timeout", "5s"]);
    let status = t.ok(&["status"]);
    assert_eq!(status.lines().count(), 2, "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("web ") && l.contains("ready") && l.contains("pid ")),
        "{status}"
    );
    let json: serde_json::Value = serde_json::from_str(&t.ok(&["--json", "status", "web"])).unwrap();
    assert_eq!(json["services"][0]["name"], "web");
    assert_eq!(json["services"][0]["state"], "ready");
    let unknown = t.ctl(&["status", "nope"]);
    assert_eq!(code(&unknown), 4);
    assert_eq!(text(&unknown.stderr), "tend ctl: no service named nope\n");
    assert_eq!(code(&t.ctl(&["start", "nope"])), 4);
    assert_eq!(code(&t.ctl(&["logs", "nope"])), 4);
    assert_eq!(code(&t.ctl(&["signal", "web", "FOO"])), 2);

    await_true("two log lines", LIMIT, || {
        t.ok(&["logs", "tick", "-n", "2"]).lines().count() == 2
    });
    assert!(t
        .ok(&["--json", "logs", "tick", "-n", "1"])
        .contains("\"kind\":\"log\""));

    // signal: the service dies of it and is restarted.
    let pid = |t: &Tend| {
        // Exit code 3 while web is down: its pid is absent then.
        let out = t.ctl(&["--json", "status", "web"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["services"][0]["pid"].as_i64()
    };
    let before = pid(&t);
    t.ok(&["signal", "web", "KILL"]);
    await_true("web restarted", LIMIT, || pid(&t).is_some_and(|p| Some(p) != before));
    assert!(t.ok(&["status"]).contains("last killed by SIGKILL"));

    assert_eq!(t.ok(&["health"]), "healthy\n");
    t.ok(&["reload"]);
    let timeout = t.ctl(&["wait", "web", "--for", "failed", "--timeout", "200ms"]);
    assert_eq!(code(&timeout), 3, "{}", text(&timeout.stderr));

    // events: a stop shows up as stopping, then exited.
    let mut events = t.cmd(&["--json", "events"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut seen = String::new();
    let mut stdout = events.stdout.take().unwrap();
    // The current states come first: then the stream is set up.
    while !seen.contains("\"name\":\"web\"") {
        let mut buf = [0u8; 4096];
        let n = stdout.read(&mut buf).unwrap();
        seen.push_str(&text(&buf[..n]));
    }
    t.ok(&["stop", "web"]);
    await_true("the exited event", LIMIT, || {
        let mut buf = [0u8; 4096];
        let n = stdout.read(&mut buf).unwrap();
        seen.push_str(&text(&buf[..n]));
        seen.contains("\"state\":\"exited\"")
    });
    assert!(seen.contains("\"state\":\"stopping\""), "{seen}");
    events.kill().unwrap();
    events.wait().unwrap();
    // Health follows its help: an enabled service stopped by hand is not
    // running, so the environment is unhealthy (this said 0 before the
    // states got one vocabulary, issue 16 item 13).
    let unhealthy = t.ctl(&["health"]);
    assert_eq!(code(&unhealthy), 1, "{}", text(&unhealthy.stderr));
    assert!(
        text(&unhealthy.stderr).contains("web: exited (stopped)"),
        "{}",
        text(&unhealthy.stderr)
    );

    assert_eq!(code(&t.ctl(&["poweroff"])), 0);
    // The reply came before the end; the client waits until tend is gone.
    let mut tend = t.child.take().unwrap();
    assert_eq!(exit_code_within(&mut tend, LIMIT), 0);
}

/// A status of more services than a batch holds comes in batches that the
/// client puts together: every service once, in name order. `--json` is
/// one reply as before, and a request without `batched` gets one line.
#[test]
fn a_status_of_many_services_comes_in_batches_root() {
    let names: Vec<String> = (0..600).map(|i| format!("s{i:03}")).collect();
    let units: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), SLEEPER)).collect();
    let t = Tend::start("batches", &units);
    let running = |text: &str| text.lines().filter(|l| l.contains(" pid ")).count();
    await_true("600 services running", LIMIT, || running(&t.ok(&["status"])) == 600);
    let shown: Vec<String> = t
        .ok(&["status"])
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(shown, names);

    let json = t.ok(&["status", "--json"]);
    assert_eq!(json.lines().count(), 1, "{json}");
    let reply: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(reply["services"].as_array().map(Vec::len), Some(600));
    assert!(reply.get("more").is_none(), "{json}");

    // On the wire: 256 a batch, `more` on all but the last.
    let batches = raw_lines(&t, r#"{"v":1,"op":"status","batched":true}"#, 3);
    let sizes: Vec<(usize, bool)> = batches
        .iter()
        .map(|line| {
            let reply: serde_json::Value = serde_json::from_str(line).unwrap();
            let more = reply.get("more") == Some(&serde_json::Value::Bool(true));
            (reply["services"].as_array().map_or(0, Vec::len), more)
        })
        .collect();
    assert_eq!(sizes, [(256, true), (256, true), (88, false)]);
    let one = raw_lines(&t, r#"{"v":1,"op":"status"}"#, 1);
    let reply: serde_json::Value = serde_json::from_str(&one[0]).unwrap();
    assert_eq!(reply["services"].as_array().map(Vec::len), Some(600));
}

/// A service's CPU time and task count in `status` come from its cgroup's
/// `cpu.stat`, which the first status opens and tend keeps for a service
/// it keeps across runs (a `status` of ten services then opens no file):
/// each read is the kernel's count at that moment, not the one at the open.
#[test]
fn status_reads_a_kept_cpu_stat_afresh_root() {
    let burn = "command = \"sleep 1000 & sleep 1000 & while [ ! -e @DIR/still ]; do :; done; wait\"\n";
    let t = Tend::start("cpustat", &[("burn", burn)]);
    let usage = || {
        let json: serde_json::Value = serde_json::from_str(&t.ok(&["--json", "status", "burn"])).unwrap();
        let service = &json["services"][0];
        (service["cpu_usec"].as_u64(), service["tasks"].as_u64())
    };
    let Some(tend) = t.child.as_ref().map(|c| await_child(c.id())) else {
        unreachable!("tend was started")
    };
    // Opened by the first status that reads it, and kept: the open file
    // is the service's own.
    let kept = || {
        let fds = std::fs::read_dir(format!("/proc/{tend}/fd")).unwrap();
        fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .any(|target| target.ends_with("burn/cpu.stat"))
    };
    t.ok(&["wait", "burn", "--for", "ready"]);
    assert!(!kept(), "cpu.stat is opened before any status");
    let (first, _) = usage();
    let first = first.expect("a CPU time");
    assert!(kept(), "cpu.stat is not kept");
    await_true("the CPU time to move while the loop spins", LIMIT, || {
        usage().0.is_some_and(|cpu| cpu >= first + 20_000)
    });
    std::fs::write(t.dir.path("still"), "").unwrap();
    // The loop ends: the time stops, and the count (sh and two sleeps)
    // is read with it.
    let settled = await_some("the CPU time to settle", LIMIT, || {
        let (a, tasks) = usage();
        std::thread::sleep(Duration::from_millis(50));
        (usage().0 == a).then_some(tasks)
    });
    assert_eq!(settled, Some(3));
}

/// The first `n` lines tend answers `request` with, on a connection of
/// their own.
fn raw_lines(t: &Tend, request: &str, n: usize) -> Vec<String> {
    use std::io::BufRead;
    let mut conn = UnixStream::connect(t.socket()).unwrap();
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    conn.write_all(format!("{request}\n").as_bytes()).unwrap();
    let mut reader = std::io::BufReader::new(conn);
    (0..n)
        .map(|_| {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            line
        })
        .collect()
}

#[test]
fn start_stop_restart_wait_for_the_result_root() {
    let t = Tend::start(
        "ssr",
        &[
            ("web", SLEEPER),
            (
                "bad",
                "type = \"oneshot\"\ncommand = \"exit 3\"\nrestart = \"no\"\nenabled = false\n",
            ),
        ],
    );
    t.ok(&["wait", "web", "--for", "running"]);
    t.ok(&["stop", "web"]);
    assert!(t
        .ok(&["status"])
        .lines()
        .any(|l| l.starts_with("web ") && l.contains("exited")));
    assert_eq!(code(&t.ctl(&["status", "web"])), 3, "a named service that is down");
    t.ok(&["start", "web"]);
    assert!(t.ok(&["status", "web"]).contains("ready"));
    let before = t.ok(&["--json", "status", "web"]);
    t.ok(&["restart", "web"]);
    let after = t.ok(&["--json", "status", "web"]);
    assert_ne!(before, after);
    assert!(after.contains("\"state\":\"ready\""));

    let failed = t.ctl(&["start", "bad"]);
    assert_eq!(code(&failed), 1);
    assert_eq!(text(&failed.stderr), "tend ctl: bad failed: exited with code 3\n");
    let unhealthy = t.ctl(&["health"]);
    assert_eq!(code(&unhealthy), 1);
    assert!(
        text(&unhealthy.stderr).contains("bad: failed"),
        "{}",
        text(&unhealthy.stderr)
    );

    t.ok(&["stop", "--no-block", "web"]);
    t.ok(&["wait", "web", "--for", "stopped", "--timeout", "10s"]);
}

#[test]
fn a_blocking_stop_is_answered_when_a_start_takes_over_root() {
    // It ignores SIGTERM, so it stays stopping until stop-timeout.
    let slow = "command = \"trap '' TERM; exec sleep 1000\"\nstop-timeout = \"2s\"\n";
    let t = Tend::start("stop-start", &[("slow", slow)]);
    t.ok(&["wait", "slow", "--for", "running"]);
    let mut stop = t.cmd(&["stop", "slow"]);
    let mut stop = stop.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    t.ok(&["wait", "slow", "--for", "stopping", "--timeout", "10s"]);
    t.ok(&["start", "slow", "--no-block"]);
    // Answered once the start takes over (after the kill at stop-timeout),
    // not left waiting for a down that no longer comes.
    let status = await_some("the stop's answer", LIMIT, || stop.try_wait().unwrap());
    let mut err = String::new();
    std::io::Read::read_to_string(stop.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err, "tend ctl: slow was started again by another request\n");
}

#[test]
fn a_reload_that_cannot_read_the_unit_directory_keeps_the_units_root() {
    let t = Tend::start("reload-gone", &[("web", SLEEPER)]);
    t.ok(&["wait", "web", "--for", "running"]);
    let pid = |t: &Tend| {
        let reply: serde_json::Value = serde_json::from_str(&t.ok(&["--json", "status", "web"])).unwrap();
        let web = &reply["services"][0];
        (web["state"].clone(), web["pid"].clone())
    };
    let before = pid(&t);
    let (units, moved) = (t.dir.path("units"), t.dir.path("units.away"));
    std::fs::rename(&units, &moved).unwrap();
    let out = t.ctl(&["reload"]);
    assert_eq!(code(&out), 1, "{}", t.log());
    let expected = format!(
        "tend ctl: cannot reload: cannot read {}: No such file or directory; the units stay as they were\n",
        units.display()
    );
    assert_eq!(text(&out.stderr), expected);
    // Not read as an empty directory: web was neither stopped nor removed.
    assert_eq!(pid(&t), before);
    std::fs::rename(&moved, &units).unwrap();
    t.ok(&["reload"]);
    assert_eq!(pid(&t), before);
}

#[test]
fn json_prints_an_error_reply_as_json_too_root() {
    let t = Tend::start("json-error", &[("web", SLEEPER)]);
    let out = t.ctl(&["--json", "start", "nosuch"]);
    assert_eq!(code(&out), 4);
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (reply["ok"].as_bool(), reply["code"].as_i64()),
        (Some(false), Some(4)),
        "{reply}"
    );
    assert!(reply["error"].as_str().is_some_and(|e| e.contains("nosuch")), "{reply}");
    assert!(
        text(&out.stderr).starts_with("tend ctl: "),
        "the line for a person stays"
    );
}

#[test]
fn exec_refuses_an_empty_variable_name_and_a_relative_directory_root() {
    let t = Tend::start("exec-bad", &[("web", SLEEPER)]);
    let refused = |args: &[&str], says: &str| {
        let out = t.ctl(args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(text(&out.stderr).contains(says), "{args:?}: {}", text(&out.stderr));
    };
    refused(&["exec", "--env", "=x", "--", "true"], "bad environment entry \"=x\"");
    refused(
        &["exec", "--cwd", "tmp", "--", "true"],
        "must be an absolute path, got \"tmp\"",
    );
    let out = output(Command::new(tend()).args(["ctl", "-M", "bad/x", "status"]));
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("invalid machine name \"bad/x\""),
        "{}",
        text(&out.stderr)
    );
}

/// One vocabulary: every state word `status` shows is a word `wait --for`
/// accepts; events are aligned lines with a timestamp and end cleanly when
/// tend shuts down.
#[test]
fn states_have_one_vocabulary_root() {
    let mut t = Tend::start("vocab", &[("web", SLEEPER), ("longer-name", SLEEPER)]);
    t.ok(&["wait", "web", "longer-name", "--for", "up", "--timeout", "10s"]);
    let mut events = t.cmd(&["events"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = events.stdout.take().unwrap();
    let mut seen = String::new();
    while seen.lines().count() < 2 {
        let mut buf = [0u8; 4096];
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "events ended early: {seen}");
        seen.push_str(&text(&buf[..n]));
    }
    t.ok(&["stop", "web"]);
    let status = t.ok(&["status"]);
    let web = status.lines().find(|l| l.starts_with("web ")).unwrap().to_string();
    let state = web.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(state, "exited", "{status}");
    // the word status shows is a word wait takes
    t.ok(&["wait", "web", "--for", &state, "--timeout", "10s"]);
    t.ok(&["wait", "web", "--for", "down", "--timeout", "10s"]);
    t.ok(&["wait", "web", "--for", "stopped", "--timeout", "10s"]);
    let refused = t.ctl(&["wait", "web", "--for", "sleepy"]);
    assert_eq!(code(&refused), 2);
    assert!(text(&refused.stderr).contains("exited"), "{}", text(&refused.stderr));
    assert_eq!(code(&t.ctl(&["health"])), 1, "an enabled service stopped by hand");
    t.ok(&["start", "web"]);
    assert_eq!(t.ok(&["health"]), "healthy\n");

    // shutdown: the events stream ends by itself, exit 0
    assert_eq!(code(&t.ctl(&["shutdown"])), 0);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    seen.push_str(&rest);
    assert_eq!(exit_code_within(&mut events, LIMIT), 0, "{seen}");
    let mut tend = t.child.take().unwrap();
    assert_eq!(exit_code_within(&mut tend, LIMIT), 0);
    // 2026-11-30T09:58:03.123Z  web          ready -> stopping  pid 7
    let lines: Vec<&str> = seen.lines().collect();
    let column = |line: &str| line.find(" -> ");
    let first = column(lines[0]);
    assert!(first.is_some(), "{seen}");
    for line in &lines {
        assert!(
            line.len() > 24 && line.as_bytes()[23] == b'Z',
            "a timestamp first: {line}"
        );
        assert_eq!(column(line), first, "aligned columns:\n{seen}");
    }
    for expected in ["ready -> stopping", "stopping -> exited", "exited -> starting"] {
        assert!(
            lines.iter().any(|l| l.contains("  web  ") && l.contains(expected)),
            "{expected}:\n{seen}"
        );
    }
}

/// A notify service restarted by hand comes up again: its new run gets a
/// fresh notify socket under the same name.
#[test]
fn a_notify_service_restarts_root() {
    let t = Tend::start(
        "notifyrestart",
        &[(
            "web",
            "type = \"notify\"\ncommand = \"systemd-notify --ready; exec sleep 1000\"\n",
        )],
    );
    t.ok(&["wait", "web", "--for", "ready", "--timeout", "10s"]);
    t.ok(&["restart", "web"]);
    t.ok(&["wait", "web", "--for", "ready", "--timeout", "10s"]);
    assert!(!t.log().contains("cannot create the notify socket"), "{}", t.log());
}

#[test]
fn logs_follow_streams_new_lines_root() {
    let t = Tend::start("follow", &[("tick", TICKER)]);
    let mut follow = t
        .cmd(&["logs", "tick", "-n", "0", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = follow.stdout.take().unwrap();
    let mut seen = String::new();
    let started = Instant::now();
    await_true("five followed lines", LIMIT, || {
        let mut buf = [0u8; 4096];
        let n = stdout.read(&mut buf).unwrap();
        seen.push_str(&text(&buf[..n]));
        seen.lines().filter(|l| l.starts_with("tick ")).count() >= 5
    });
    // They arrive as the service writes them (every 50 ms), not at the end.
    assert!(started.elapsed() < Duration::from_secs(5));
    let numbers: Vec<u64> = seen
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    follow.kill().unwrap();
    follow.wait().unwrap();
}

#[test]
fn exec_passes_pipes_and_exit_codes_root() {
    let t = Tend::start("exec", &[]);
    let mut child = t
        .cmd(&[
            "exec",
            "--env",
            "GREETING=hi",
            "--",
            "sh",
            "-c",
            "read x; echo $GREETING $x; echo err >&2; exit 7",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"there\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 7);
    assert_eq!(text(&out.stdout), "hi there\n");
    assert_eq!(text(&out.stderr), "err\n");

    assert_eq!(code(&t.ctl(&["exec", "--", "sh", "-c", "kill -TERM $$"])), 143);
    let missing = t.ctl(&["exec", "--", "/no/such/program"]);
    assert_eq!(code(&missing), 127);
    assert!(text(&missing.stderr).contains("cannot execute /no/such/program"));
    assert_eq!(t.ok(&["exec", "--cwd", "/proc", "--", "pwd"]), "/proc\n");
    assert_eq!(t.ok(&["exec", "--user", "nobody", "--", "id", "-u"]), "65534\n");

    // A client that goes away hangs up on its command.
    let marker = t.dir.path("hup");
    let script = format!(
        "trap 'echo hup > {}; exit 0' HUP; while true; do sleep 0.05; done",
        marker.display()
    );
    let mut client = t
        .cmd(&["exec", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    await_true("the exec'd command", LIMIT, || t.log().contains("exec sh -c trap"));
    client.kill().unwrap();
    client.wait().unwrap();
    await_true("SIGHUP to the command", LIMIT, || marker.exists());

    // Ctrl-C (SIGINT) to the client reaches the command, whose exit code
    // comes back as the client's (a client killed by it would give 130).
    let ready = t.dir.path("int-ready");
    let script = format!(
        "trap 'exit 5' INT; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut client = t
        .cmd(&["exec", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    await_true("the command to run", LIMIT, || ready.exists());
    send(client.id(), libc::SIGINT);
    assert_eq!(
        exit_code_within(&mut client, LIMIT),
        5,
        "the command trapped the forwarded SIGINT"
    );
}

#[test]
fn exec_t_runs_an_interactive_shell_root() {
    let t = Tend::start("tty", &[]);
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = t
        .cmd(&["exec", "-t", "--", "sh", "-i"])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    master.write_all(b"echo $((6*7)); tty\n").unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !(seen.contains("42") && seen.contains("/dev/pts/")) {
        let n = master.read(&mut buf).unwrap();
        assert!(n > 0, "{seen}");
        seen.push_str(&text(&buf[..n]));
    }
    master.write_all(b"exit 3\n").unwrap();
    let code = exit_code_within(&mut child, LIMIT);
    assert_eq!(code, 3, "{seen}");
}

#[test]
fn non_root_peers_are_refused_root() {
    let t = Tend::start("auth", &[]);
    let as_nobody = |t: &Tend| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(tend())
            .args(["ctl", "--socket"])
            .arg(t.socket())
            .arg("status");
        output(&mut cmd)
    };
    let out = as_nobody(&t);
    assert_eq!(code(&out), 5, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("permission denied"));
    // With the file permissions opened, the server itself refuses.
    use std::os::unix::fs::PermissionsExt;
    for path in [t.dir.0.clone(), t.dir.path("run"), t.socket()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let out = as_nobody(&t);
    assert_eq!(code(&out), 5, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("uid 65534 may not use this socket"),
        "{}",
        text(&out.stderr)
    );
    t.ok(&["ping"]);
}

#[test]
fn bad_clients_do_not_stall_supervision_root() {
    let crash = "command = \"date +%s%N >> @DIR/starts; exit 1\"\nrestart-delay = \"100ms\"\nrestart-delay-max = \"100ms\"\nstart-limit-burst = 1000\n";
    let t = Tend::start("stall", &[("crash", crash), ("tick", TICKER)]);
    let connect = || UnixStream::connect(t.socket()).unwrap();
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(connect()); // silent
    }
    for _ in 0..20 {
        let mut c = connect();
        c.write_all(b"{").unwrap(); // one byte, then nothing
        clients.push(c);
    }
    let mut garbage = connect();
    garbage.write_all(&[0xff; 1000]).unwrap();
    garbage.write_all(b"\n").unwrap();
    let mut huge = connect();
    let _ = huge.write_all(&vec![b'x'; 200_000]);
    // Followers that never read what they asked for.
    for _ in 0..5 {
        let mut c = connect();
        c.write_all(b"{\"v\":1,\"op\":\"logs\",\"name\":\"tick\",\"follow\":true}\n")
            .unwrap();
        clients.push(c);
    }
    let window = Duration::from_secs(3);
    let before = t.lines("starts").len();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    while started.elapsed() < window {
        let asked = Instant::now();
        t.ok(&["status"]);
        slowest = slowest.max(asked.elapsed());
    }
    let starts = t.lines("starts").len() - before;
    // One start per ~100 ms plus the spawn: well over 10 in 3 s.
    assert!(starts >= 10, "only {starts} starts in {window:?}\n{}", t.log());
    assert!(slowest < Duration::from_secs(1), "a status took {slowest:?}");
    let mut reply = String::new();
    let _ = garbage.read_to_string(&mut reply);
    assert!(reply.contains("malformed request"), "{reply}");
    let mut reply = String::new();
    let _ = huge.read_to_string(&mut reply);
    assert!(reply.contains("frame longer than"), "{reply}");
}

/// What a client sends while its request is in progress (a stream, a
/// blocking `start`) waits in the socket, not in PID 1's memory: tend read
/// it all into its framer before, without bound.
#[test]
fn input_during_a_stream_is_bounded_root() {
    use std::os::fd::AsFd;
    let t = Tend::start("flood", &[("sleeper", SLEEPER)]);
    let mut c = UnixStream::connect(t.socket()).unwrap();
    c.write_all(b"{\"v\":1,\"op\":\"events\"}\n").unwrap();
    c.set_nonblocking(true).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 64 << 20 {
        match c.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Full: tend has stopped reading, unless it reads within 2 s.
                let mut fds = [nix::poll::PollFd::new(c.as_fd(), nix::poll::PollFlags::POLLOUT)];
                if nix::poll::poll(&mut fds, 2000u16).unwrap() == 0 {
                    break;
                }
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(sent < 8 << 20, "tend took {sent} bytes during a stream");
    t.ok(&["status"]);

    // Requests sent behind a blocking one are all answered once it is.
    let c = UnixStream::connect(t.socket()).unwrap();
    let wait = b"{\"v\":1,\"op\":\"wait\",\"names\":[\"sleeper\"],\"for\":\"failed\",\"timeout_ms\":300}\n";
    let pings = b"{\"v\":1,\"op\":\"ping\"}\n".repeat(10_000);
    let mut writer = c.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        writer.write_all(wait).unwrap();
        writer.write_all(&pings).unwrap();
    });
    c.set_read_timeout(Some(LIMIT)).unwrap();
    let mut replies = std::io::BufReader::new(c);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut replies, &mut line).unwrap();
    assert!(line.contains("\"code\":3"), "{line}");
    for i in 0..10_000 {
        line.clear();
        std::io::BufRead::read_line(&mut replies, &mut line).unwrap();
        assert!(line.contains("pong"), "reply {i}: {line:?}");
    }
    sender.join().unwrap();
}

#[test]
fn services_and_commands_see_no_tend_fds_root() {
    let t = Tend::start(
        "fds",
        &[(
            "lister",
            "command = \"ls -1 /proc/self/fd > @DIR/fds\"\nrestart = \"no\"\n",
        )],
    );
    // Some clients connected while it runs.
    let _clients: Vec<UnixStream> = (0..3).map(|_| UnixStream::connect(t.socket()).unwrap()).collect();
    t.ok(&["restart", "lister"]);
    let fds = await_some("the fd list", LIMIT, || {
        let lines = t.lines("fds");
        (!lines.is_empty()).then_some(lines)
    });
    // 0, 1, 2, the directory ls reads, and what tend itself inherited
    // (the fds of its parent, unshare: a test harness may leak some).
    let mut expected: Vec<String> = ["0", "1", "2", "3"].map(String::from).to_vec();
    let unshare = t.child.as_ref().unwrap().id();
    for entry in std::fs::read_dir(format!("/proc/{unshare}/fd")).unwrap() {
        expected.push(entry.unwrap().file_name().to_string_lossy().into_owned());
    }
    let fine = |fds: &[String]| fds.iter().all(|fd| expected.contains(fd));
    assert!(
        fine(&fds),
        "service fds {fds:?}, tend inherited {expected:?}\n{}",
        t.log()
    );
    let fds: Vec<String> = t
        .ok(&["exec", "--", "ls", "-1", "/proc/self/fd"])
        .lines()
        .map(String::from)
        .collect();
    assert!(fine(&fds), "exec fds {fds:?}, tend inherited {expected:?}");
}

#[test]
fn pid_reaches_tend_in_another_mount_namespace_root() {
    // A tmpfs on /run that only tend's mount namespace sees.
    let script = format!(
        // (an empty unit directory: a missing --units one is an error)
        "mount -t tmpfs tmpfs /run && mkdir /run/units && exec {} init --units /run/units",
        tend().display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    cmd.env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let pid = await_child(child.id());
    assert!(
        !std::path::Path::new("/run/tend/ctl.sock").exists()
            || std::fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok()
    );
    let ping = || output(Command::new(tend()).args(["ctl", "--pid", &pid.to_string(), "ping"]));
    await_true("tend answering through /proc/PID/root", LIMIT, || {
        ping().status.success()
    });
    let out = output(Command::new(tend()).args(["ctl", "--pid", &pid.to_string(), "shutdown"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(exit_code_within(&mut child, LIMIT), 0);
}

#[test]
fn missing_socket_names_the_path_root() {
    let out = output(Command::new(tend()).args(["ctl", "--socket", "/nonexistent/ctl.sock", "status"]));
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "tend ctl: no control socket at /nonexistent/ctl.sock (is tend running there? use --socket PATH, --pid PID or -M NAME; tend list shows the machines)\n"
    );
}
