//! `tend init` as PID 1 of a fresh PID namespace, supervising real unit
//! files. Needs root.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

/// A scratch directory with a `units/` directory in it.
struct Setup {
    dir: TempDir,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let dir = TempDir::new(tag);
        std::fs::create_dir(dir.path("units")).unwrap();
        Setup { dir }
    }

    fn units(&self) -> PathBuf {
        self.dir.path("units")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path(name)
    }

    /// `p("x")`: the path of scratch file x, as text for unit files.
    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn unit(&self, name: &str, toml: &str) {
        std::fs::write(self.units().join(format!("{name}.toml")), toml).unwrap();
    }

    /// `tend init --units DIR [-- CMD...]` as PID 1; its stdout and stderr
    /// go to `tend.out` and `tend.log`, which tests can watch as it runs.
    fn init(&self, command: &[&str]) -> Command {
        let units = self.units();
        let socket = self.path("ctl.sock");
        // Each test its own control socket: they run at once, in the host's /run.
        let mut args = vec![
            "init",
            "--units",
            units.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
        ];
        if !command.is_empty() {
            args.push("--");
            args.extend(command);
        }
        let mut cmd = tend_as_pid1(&args);
        self.capture(&mut cmd);
        cmd
    }

    fn capture(&self, cmd: &mut Command) {
        let out = std::fs::File::create(self.path("tend.out")).unwrap();
        let log = std::fs::File::create(self.path("tend.log")).unwrap();
        cmd.stdin(Stdio::null()).stdout(out).stderr(log);
    }

    /// Waits until tend's log has a line containing `text`.
    fn await_log(&self, text: &str) {
        let log = self.path("tend.log");
        await_true(&format!("{text:?} in the log"), LIMIT, || {
            read_lines(&log).iter().any(|l| l.contains(text))
        });
    }

    /// Waits for tend to exit: (code, stdout, stderr).
    fn finish(&self, mut child: Child) -> (i32, String, String) {
        let code = exit_code_within(&mut child, LIMIT);
        let read = |name: &str| std::fs::read_to_string(self.path(name)).unwrap_or_default();
        (code, read("tend.out"), read("tend.log"))
    }

    fn lines(&self, name: &str) -> Vec<String> {
        read_lines(&self.path(name))
    }

    fn await_lines(&self, name: &str, n: usize) -> Vec<String> {
        await_some(&format!("{n} lines in {name}"), LIMIT, || {
            let lines = self.lines(name);
            (lines.len() >= n).then_some(lines)
        })
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// SIGTERM to tend (PID 1 inside, the child of unshare outside).
fn stop(unshare: &Child) {
    send(await_child(unshare.id()), libc::SIGTERM);
}

fn millis(line: &str) -> u128 {
    line.trim().parse::<u128>().unwrap() / 1_000_000
}

#[test]
fn crash_restarts_with_growing_delay_root() {
    let s = Setup::new("crash");
    s.unit(
        "crash",
        &format!(
            "command = \"date +%s%N >> {}; exit 1\"\nrestart-delay = \"200ms\"\n",
            s.p("starts")
        ),
    );
    let tend = s.init(&[]).spawn().unwrap();
    let starts = s.await_lines("starts", 3);
    stop(&tend);
    let (code, _, log) = s.finish(tend);
    let (first, second) = (
        millis(&starts[1]) - millis(&starts[0]),
        millis(&starts[2]) - millis(&starts[1]),
    );
    assert!(first >= 200, "first restart after {first} ms\n{log}");
    assert!(second >= 400, "second restart after {second} ms (doubled)\n{log}");
    // It may be crashing right as SIGTERM comes (exit 1) or be stopped by it.
    assert!(code == 0 || code == 1, "{log}");
}

#[test]
fn restart_no_runs_once_and_main_code_is_tends_root() {
    let s = Setup::new("once");
    s.unit(
        "once",
        &format!("command = \"echo run >> {}\"\nrestart = \"no\"\n", s.p("runs")),
    );
    // The main command outlives the unit by a second, the window in which a
    // wrong restart would show.
    let wait = format!("until [ -s {} ]; do sleep 0.01; done; sleep 1; exit 7", s.p("runs"));
    let (code, _, log) = s.finish(s.init(&["sh", "-c", &wait]).spawn().unwrap());
    assert_eq!(code, 7, "{log}");
    assert_eq!(s.lines("runs"), ["run"], "{log}");
}

#[test]
fn start_limit_gives_failed_root() {
    let s = Setup::new("limit");
    let unit = format!(
        "command = \"echo x >> {}; exit 1\"\nrestart-delay = \"10ms\"\nstart-limit-burst = 3\nstart-limit-interval = \"1m\"\n",
        s.p("starts")
    );
    s.unit("flaky", &unit);
    let tend = s.init(&[]).spawn().unwrap();
    s.await_log("flaky: failed");
    stop(&tend);
    let (_, _, log) = s.finish(tend);
    assert!(log.contains("flaky: failed"), "{log}");
    assert_eq!(s.lines("starts").len(), 3, "{log}");
}

#[test]
fn oneshot_runs_before_dependents_and_failure_keeps_them_down_root() {
    let s = Setup::new("oneshot");
    let order = s.p("order");
    s.unit(
        "prepare",
        &format!("type = \"oneshot\"\ncommand = \"sleep 0.2; echo prepare >> {order}\"\n"),
    );
    s.unit(
        "app",
        &format!("command = \"echo app >> {order}; exec sleep 1000\"\nrequires = [\"prepare\"]\n"),
    );
    s.unit("broken", "type = \"oneshot\"\ncommand = \"exit 1\"\nrestart = \"no\"\n");
    s.unit(
        "blocked",
        &format!("command = \"echo blocked >> {order}\"\nrequires = [\"broken\"]\n"),
    );
    let tend = s.init(&[]).spawn().unwrap();
    s.await_lines("order", 2);
    s.await_log("broken: failed");
    stop(&tend);
    let (code, _, log) = s.finish(tend);
    assert_eq!(s.lines("order"), ["prepare", "app"], "{log}");
    assert_eq!(code, 1, "a failed service means not everything stopped cleanly\n{log}");
}

#[test]
fn after_waits_for_notify_ready_and_tcp_check_root() {
    let s = Setup::new("ready");
    let order = s.p("order");
    s.unit(
        "notifier",
        &format!("type = \"notify\"\ncommand = \"sleep 0.3; echo notifier >> {order}; systemd-notify --ready; exec sleep 1000\"\n"),
    );
    s.unit(
        "server",
        &format!("command = \"sleep 0.3; echo server >> {order}; exec busybox nc -ll -p 18471 -e true\"\nready = {{ tcp = \"127.0.0.1:18471\" }}\nready-timeout = \"10s\"\n"),
    );
    s.unit(
        "client",
        &format!("command = \"echo client >> {order}; exec sleep 1000\"\nafter = [\"notifier\", \"server\"]\n"),
    );
    let tend = s.init(&[]).spawn().unwrap();
    let lines = s.await_lines("order", 3);
    stop(&tend);
    let (_, _, log) = s.finish(tend);
    assert_eq!(lines[2], "client", "{log}");
    assert!(log.contains("notifier: ready"), "{log}");
    assert!(log.contains("server: ready"), "{log}");
}

/// tend's own lines tell things in the order they happened: a dependent
/// starts after its dependency is ready, and the services' exits come
/// before tend's own exit line.
#[test]
fn log_lines_come_in_the_order_things_happened_root() {
    let s = Setup::new("logorder");
    s.unit(
        "web",
        "type = \"notify\"\ncommand = \"sleep 0.2; systemd-notify --ready; exec sleep 1000\"\n",
    );
    s.unit("ticker", "command = \"exec sleep 1000\"\nafter = [\"web\"]\n");
    let tend = s.init(&[]).spawn().unwrap();
    s.await_log("ticker: ready");
    stop(&tend);
    let (code, _, log) = s.finish(tend);
    assert_eq!(code, 0, "{log}");
    let at = |text: &str| {
        let lines: Vec<&str> = log.lines().collect();
        lines
            .iter()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("{text:?} not in the log:\n{log}"))
    };
    assert!(at("web: ready") < at("started ticker"), "{log}");
    assert!(at("started ticker") < at("ticker: ready"), "{log}");
    assert!(at("ticker: exited") < at("exiting with code 0"), "{log}");
    assert!(at("web: exited") < at("exiting with code 0"), "{log}");
    assert!(at("ticker: exited") < at("web: stopping"), "reverse order:\n{log}");
}

#[test]
fn a_restart_is_told_in_order_root() {
    // tend spawns the new run before it formats the lines of the old one's
    // end: the lines still come in the order things happened.
    let s = Setup::new("restartorder");
    // Its first run kills itself (pids are the namespace's, as in the log).
    let (pids, once) = (s.p("pids"), s.p("once"));
    s.unit(
        "flaky",
        &format!(
            "command = \"echo $$ >> {pids}; [ -e {once} ] || {{ touch {once}; kill -KILL $$; }}; exec sleep 1000\"\n\
             restart-delay = \"0s\"\n"
        ),
    );
    let tend = s.init(&[]).spawn().unwrap();
    let [first, second] = [0, 1].map(|i| s.await_lines("pids", 2)[i].clone());
    s.await_log(&format!("started flaky (pid {second})"));
    stop(&tend);
    let (_, _, log) = s.finish(tend);
    let lines: Vec<&str> = log.lines().collect();
    let at = |text: &str| {
        lines
            .iter()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("{text:?} not in the log:\n{log}"))
    };
    let killed = at(&format!("flaky (pid {first}) killed by SIGKILL"));
    let started = at(&format!("started flaky (pid {second})"));
    let starting = lines.iter().skip(killed).position(|l| l.ends_with("flaky: starting"));
    assert!(at(&format!("started flaky (pid {first})")) < killed, "{log}");
    assert!(starting.is_some_and(|n| killed + n < started), "{log}");
}

#[test]
fn stop_escalates_to_sigkill_after_stop_timeout_root() {
    let s = Setup::new("escalate");
    s.unit(
        "stubborn",
        &format!(
            "command = \"trap '' TERM; echo up > {}; while :; do sleep 0.05; done\"\nstop-timeout = \"300ms\"\n",
            s.p("up")
        ),
    );
    let tend = s.init(&[]).spawn().unwrap();
    s.await_lines("up", 1);
    stop(&tend);
    let (code, _, log) = s.finish(tend);
    assert!(log.contains("killed by SIGKILL"), "{log}");
    assert_eq!(code, 1, "a service that had to be killed did not stop cleanly\n{log}");
}

#[test]
fn double_forking_daemon_is_stopped_completely_root() {
    // Not in a PID namespace, so the daemon's pid can be checked from here
    // while tend goes on running; reload stops the removed unit.
    let s = Setup::new("daemon");
    let pidfile = s.p("daemon.pid");
    s.unit(
        "daemon",
        &format!("command = \"setsid sh -c 'sleep 1000 & echo $! > {pidfile}'; exec sleep 1000\"\n"),
    );
    let units = s.units();
    let mut cmd = Command::new(tend());
    cmd.args(["init", "--no-socket", "--units", units.to_str().unwrap()]);
    s.capture(&mut cmd);
    let mut tend = cmd.spawn().unwrap();
    let daemon: i32 = s.await_lines("daemon.pid", 1)[0].parse().unwrap();
    std::fs::remove_file(units.join("daemon.toml")).unwrap();
    send(tend.id(), libc::SIGHUP);
    // SAFETY: kill with signal 0 only checks for existence.
    await_true("the daemon to be gone", LIMIT, || unsafe { libc::kill(daemon, 0) } != 0);
    send(tend.id(), libc::SIGTERM);
    assert_eq!(exit_code_within(&mut tend, LIMIT), 0);
}

#[test]
fn user_env_working_dir_and_limits_take_effect_root() {
    let s = Setup::new("creds");
    std::fs::create_dir(s.path("work")).unwrap();
    let script = format!("echo $(id -u) $(id -g) $GREETING $(pwd) $(ulimit -n) > {}", s.p("out"));
    let unit = format!(
        "command = [\"sh\", \"-c\", \"{script}\"]\nuser = \"nobody\"\nworking-dir = \"{}\"\nenv = {{ GREETING = \"hello\" }}\nlimits = {{ nofile = 777 }}\nrestart = \"no\"\n",
        s.p("work")
    );
    // The output file must be writable by nobody.
    std::fs::set_permissions(&s.dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    s.unit("creds", &unit);
    let tend = s.init(&[]).spawn().unwrap();
    let line = s.await_lines("out", 1).remove(0);
    stop(&tend);
    let (_, _, log) = s.finish(tend);
    assert_eq!(line, format!("65534 65534 hello {} 777", s.p("work")), "{log}");
}

#[test]
fn ready_and_health_checks_run_as_their_service_does_root() {
    // Found at load in the working directory, with the unit's environment
    // and user: each try runs the same way (before, the ready check ran as
    // tend, in tend's directory, and so never passed).
    let s = Setup::new("checks-as");
    let app = s.path("app");
    std::fs::create_dir(&app).unwrap();
    let script = format!(
        "#!/bin/sh\ntest \"$MARK\" = yes && test \"$(id -u)\" = 65534 && test \"$(pwd)\" = {}\n",
        app.display()
    );
    std::fs::write(app.join("check.sh"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (path, mode) in [(&s.dir.0, 0o755), (&app, 0o755), (&app.join("check.sh"), 0o755)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    s.unit(
        "web",
        &format!(
            "command = [\"sleep\", \"1000\"]\nuser = \"nobody\"\nworking-dir = \"{}\"\nenv = {{ MARK = \"yes\" }}\nready = {{ exec = [\"./check.sh\"] }}\nready-timeout = \"60s\"\nhealth = {{ exec = [\"./check.sh\"] }}\nhealth-interval = \"100ms\"\n",
            app.display()
        ),
    );
    let tend = s.init(&[]).spawn().unwrap();
    s.await_log("web: ready");
    s.await_log("web: healthy");
    stop(&tend);
    let (_, _, log) = s.finish(tend);
    assert!(!log.contains("not ready within") && !log.contains("unhealthy"), "{log}");
}

#[test]
fn a_working_directory_that_cannot_be_entered_is_named_as_the_failure_root() {
    // Entered as the service's user, after its ids change, as systemd's
    // WorkingDirectory= is; a failure names the directory, not the program.
    let s = Setup::new("cwd");
    let closed = s.path("closed");
    std::fs::create_dir(&closed).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&s.dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let missing = s.p("missing");
    s.unit(
        "gone",
        &format!("command = [\"/bin/true\"]\nworking-dir = \"{missing}\"\nrestart = \"no\"\n"),
    );
    s.unit(
        "shut",
        &format!(
            "command = [\"/bin/true\"]\nuser = \"nobody\"\nworking-dir = \"{}\"\nrestart = \"no\"\n",
            closed.display()
        ),
    );
    let tend = s.init(&[]).spawn().unwrap();
    s.await_log(&format!(
        "gone: cannot start /bin/true: cannot change to the working directory {missing}: No such file or directory"
    ));
    s.await_log(&format!(
        "shut: cannot start /bin/true: cannot change to the working directory {}: Permission denied",
        closed.display()
    ));
    stop(&tend);
    s.finish(tend);
}

#[test]
fn output_is_captured_with_the_service_prefix_root() {
    let s = Setup::new("logs");
    s.unit(
        "talker",
        "command = \"echo hello out; echo hello err >&2\"\nrestart = \"no\"\n",
    );
    let done = s.p("done");
    s.unit(
        "marker",
        &format!("command = \"touch {done}\"\nafter = [\"talker\"]\nrestart = \"no\"\n"),
    );
    let tend = s.init(&[]).spawn().unwrap();
    await_true("the marker", LIMIT, || Path::new(&done).exists());
    s.await_log("talker: hello err");
    stop(&tend);
    let (_, out, log) = s.finish(tend);
    assert!(out.lines().any(|l| l == "talker: hello out"), "stdout: {out}");
    assert!(log.lines().any(|l| l == "talker: hello err"), "stderr: {log}");
}

#[test]
fn reload_starts_new_restarts_changed_stops_removed_root() {
    let s = Setup::new("reload");
    let runs = s.p("runs");
    let unit = |tag: &str| format!("command = \"echo {tag} >> {runs}; exec sleep 1000\"\n");
    s.unit("same", &unit("same"));
    s.unit("changed", &unit("changed-v1"));
    s.unit("removed", &unit("removed"));
    let tend = s.init(&[]).spawn().unwrap();
    s.await_lines("runs", 3);
    s.unit("changed", &unit("changed-v2"));
    s.unit("added", &unit("added"));
    std::fs::remove_file(s.units().join("removed.toml")).unwrap();
    send(await_child(tend.id()), libc::SIGHUP);
    s.await_lines("runs", 5);
    s.await_log("removed (pid");
    stop(&tend);
    let (_, _, log) = s.finish(tend);
    let mut later: Vec<String> = s.lines("runs").split_off(3);
    later.sort();
    assert_eq!(later, ["added", "changed-v2"], "{log}");
    assert_eq!(s.lines("runs").iter().filter(|l| *l == "same").count(), 1, "{log}");
    assert!(log.contains("removed (pid"), "{log}");
}

#[test]
fn an_invalid_unit_does_not_stop_the_others_root() {
    let s = Setup::new("invalid");
    s.unit("bad", "command = \"true\"\nrestart_delay = \"1s\"\n");
    s.unit(
        "good",
        &format!("command = \"echo ok > {}\"\nrestart = \"no\"\n", s.p("good")),
    );
    let tend = s.init(&[]).spawn().unwrap();
    s.await_lines("good", 1);
    s.await_log("bad: invalid");
    stop(&tend);
    let (_, _, log) = s.finish(tend);
    assert!(
        log.contains("bad.toml:2:1: unknown key \"restart_delay\", did you mean \"restart-delay\"?"),
        "{log}"
    );
    assert!(log.contains("bad: invalid"), "{log}");
}

#[test]
fn tend_tells_its_manager_when_ready_root() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let s = Setup::new("upward");
    s.unit("svc", "command = \"exec sleep 1000\"\n");
    let name = format!("tend-test-manager-{}", std::process::id());
    let socket = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    let tend = s.init(&[]).env("NOTIFY_SOCKET", format!("@{name}")).spawn().unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 1024];
    while !got.contains("READY=1") {
        let n = socket.recv(&mut buf).expect("no READY=1 from tend");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    stop(&tend);
    while !got.contains("STOPPING=1") {
        let n = socket.recv(&mut buf).expect("no STOPPING=1 from tend");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let (code, _, log) = s.finish(tend);
    assert_eq!(code, 0, "{log}");
}

/// A manager that reads `$NOTIFY_SOCKET` late: its queue is full while
/// the services come up (net.unix.max_dgram_qlen is 10 here). The STATUS=
/// lines are coalesced, and READY=1 is sent once the queue has room.
#[test]
fn ready_reaches_a_manager_that_reads_late_root() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let s = Setup::new("lateready");
    for i in 0..60 {
        s.unit(&format!("svc{i}"), "command = \"exec sleep 1000\"\n");
    }
    let name = format!("tend-test-late-manager-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    // Fill the queue before tend starts: every send of tend's fails at first.
    let filler = UnixDatagram::unbound().unwrap();
    filler.set_nonblocking(true).unwrap();
    let mut filled = 0;
    while filler.send_to_addr(b"FILLER=1", &addr).is_ok() {
        filled += 1;
    }
    assert!(filled > 0);
    let tend = s.init(&[]).env("NOTIFY_SOCKET", format!("@{name}")).spawn().unwrap();
    await_true("every service ready", LIMIT, || {
        let log = std::fs::read_to_string(s.path("tend.log")).unwrap_or_default();
        log.lines().filter(|l| l.contains(": ready")).count() == 60
    });
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 1024];
    let mut datagrams = 0;
    while !got.contains("READY=1") {
        let n = socket.recv(&mut buf).expect("no READY=1 from tend");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
        datagrams += 1;
    }
    assert!(got.contains("STATUS=60 of 60 services up"), "{got}");
    // the late STATUS= lines were coalesced, not queued one by one
    assert!(datagrams <= filled + 2, "{datagrams} datagrams: {got}");
    stop(&tend);
    let (code, _, log) = s.finish(tend);
    assert_eq!(code, 0, "{log}");
}

/// `--units` relative to where tend was started (tend itself moves to /).
#[test]
fn relative_units_directory_root() {
    let s = Setup::new("relunits");
    s.unit(
        "marker",
        &format!("command = \"echo up > {}; exec sleep 1000\"\n", s.p("up")),
    );
    let socket = s.path("ctl.sock");
    let mut cmd = tend_as_pid1(&["init", "--units", "units", "--socket", socket.to_str().unwrap()]);
    cmd.current_dir(s.path(""));
    s.capture(&mut cmd);
    let tend = cmd.spawn().unwrap();
    s.await_log("marker: ready");
    await_true("the unit ran", LIMIT, || s.path("up").exists());
    stop(&tend);
    let (code, _, log) = s.finish(tend);
    assert_eq!(code, 0, "{log}");
}

/// A `--units` directory that does not exist: one line, exit 1, nothing runs.
#[test]
fn missing_units_directory_is_an_error_root() {
    let s = Setup::new("nounits");
    let missing = s.path("nowhere");
    let mut cmd = tend_as_pid1(&["init", "--units", missing.to_str().unwrap(), "--no-socket"]);
    s.capture(&mut cmd);
    let mut tend = cmd.spawn().unwrap();
    let code = exit_code_within(&mut tend, LIMIT);
    let log = std::fs::read_to_string(s.path("tend.log")).unwrap();
    assert_eq!(code, 1, "{log}");
    assert_eq!(log, format!("tend: --units {}: no such directory\n", missing.display()));
    // with a command too: the directory was asked for
    let mut cmd = tend_as_pid1(&[
        "init",
        "--units",
        missing.to_str().unwrap(),
        "--no-socket",
        "--",
        "true",
    ]);
    s.capture(&mut cmd);
    let mut tend = cmd.spawn().unwrap();
    assert_eq!(exit_code_within(&mut tend, LIMIT), 1);
}

#[test]
fn bare_tend_as_pid1_is_init_root() {
    // No arguments at all: `tend init` with the defaults. This machine has no
    // /etc/tend/units, which is logged; tend stays up until told to stop.
    let s = Setup::new("bare");
    let mut cmd = tend_as_pid1(&[]);
    s.capture(&mut cmd);
    let tend = cmd.spawn().unwrap();
    s.await_log("/etc/tend/units: cannot read unit directory");
    stop(&tend);
    let (code, _, log) = s.finish(tend);
    assert_eq!(code, 0, "{log}");
}

#[test]
fn idle_init_does_not_wake_up_root() {
    // Services running, the control socket served, a job scheduled half an
    // hour from now: still no timer ticks.
    let s = Setup::new("idle");
    s.unit("a", "command = \"exec sleep 1000\"\n");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let minute = (now.as_secs() / 60 + 30) % 60;
    s.unit(
        "job",
        &format!("type = \"oneshot\"\ncommand = \"true\"\nschedule = \"{minute} * * * *\"\n"),
    );
    s.unit("b", "command = [\"sleep\", \"1000\"]\nafter = [\"a\"]\n");
    let tend = s.init(&[]).spawn().unwrap();
    s.await_log("b: ready");
    let pid1 = await_child(tend.id());
    await_idle(pid1);
    let before = context_switches(pid1);
    // The measurement window itself, not a wait for a condition.
    std::thread::sleep(Duration::from_secs(2));
    let after = context_switches(pid1);
    stop(&tend);
    let (code, _, log) = s.finish(tend);
    assert_eq!(after - before, 0, "PID 1 woke up while idle\n{log}");
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains("job: invalid"), "the scheduled unit is valid\n{log}");
}

#[test]
fn a_running_unit_whose_file_turns_invalid_lives_on_its_old_definition_root() {
    let s = Setup::new("keep-old");
    let runs = s.p("runs");
    // The ready check must come back with the restart: without it the
    // service would stay `running`, never `ready`.
    s.unit(
        "keep",
        &format!("command = \"echo run >> {runs}; exec sleep 1000\"\nready = {{ exec = [\"/bin/true\"] }}\n"),
    );
    let init = s.init(&[]).spawn().unwrap();
    s.await_log("keep: ready");
    s.unit("keep", "command = 5\n");
    send(await_child(init.id()), libc::SIGHUP);
    s.await_log("keeping the old one");

    let ctl = |args: &[&str]| {
        let mut cmd = Command::new(tend());
        cmd.args(["ctl", "--socket", &s.p("ctl.sock")]).args(args);
        output(&mut cmd)
    };
    let check = output(Command::new(tend()).arg("check").arg(s.units()));
    let report = String::from_utf8_lossy(&check.stdout).into_owned();
    assert_eq!(check.status.code(), Some(1), "{report}");
    assert!(report.contains("keep.toml:1:11:"), "{report}");
    let status = String::from_utf8_lossy(&ctl(&["status", "keep"]).stdout).into_owned();
    assert!(
        status.contains("keep.toml:1:11:"),
        "status shows the new file's error: {status}"
    );

    // A crash restarts it on the definition it runs with.
    assert!(ctl(&["signal", "keep", "KILL"]).status.success());
    s.await_lines("runs", 2);
    await_true("keep ready again", LIMIT, || {
        let out = ctl(&["status", "keep"]);
        String::from_utf8_lossy(&out.stdout).contains("ready")
    });
    stop(&init);
    let (code, _, log) = s.finish(init);
    assert!(!log.contains("no such unit") && !log.contains("no definition"), "{log}");
    assert_eq!(code, 0, "{log}");
}

#[test]
fn the_command_after_dashes_keeps_its_bytes_root() {
    use std::os::unix::ffi::OsStrExt;
    let s = Setup::new("bytes");
    let out = s.p("bytes");
    let script = format!("printf %s \"$1\" > {out}");
    let arg = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let mut cmd = tend_as_pid1(&[
        "init",
        "--no-socket",
        "--units",
        s.units().to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        &script,
        "sh",
    ]);
    cmd.arg(arg);
    s.capture(&mut cmd);
    let tend = cmd.spawn().unwrap();
    let (code, _, log) = s.finish(tend);
    assert_eq!(code, 0, "{log}");
    assert_eq!(std::fs::read(s.path("bytes")).unwrap(), b"caf\xe9", "{log}");
}

/// A unit's program is looked up in tend's own `PATH` (an image's `ENV
/// PATH` reaches the services, so validation looks where the exec will),
/// once when the unit is loaded and again at each reload, as systemd does,
/// not at every start: a program that appears earlier in `PATH` later is
/// taken at the next reload.
#[test]
fn a_unit_s_program_is_found_in_tends_path_at_load_and_reload_root() {
    let s = Setup::new("path");
    for dir in ["early", "late"] {
        std::fs::create_dir(s.path(dir)).unwrap();
    }
    let program = |dir: &str| {
        let file = s.path(dir).join("tend-path-probe");
        let script = format!("#!/bin/sh\necho {dir} >> {}\nexec sleep 1000\n", s.p("runs"));
        std::fs::write(&file, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // Only in the second directory of tend's PATH, which the default
    // PATH does not hold.
    program("late");
    s.unit("probe", "command = [\"tend-path-probe\"]\nrestart-delay = \"0s\"\n");
    let path = format!(
        "{}:{}:{}",
        s.p("early"),
        s.p("late"),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = s.init(&[]);
    cmd.env("PATH", path);
    let tend = cmd.spawn().unwrap();
    s.await_lines("runs", 1);
    let kill_probe = |tend: &Child| {
        let pid1 = await_child(tend.id());
        let probe = await_some("the probe's process", LIMIT, || children(pid1).first().copied());
        send(probe, libc::SIGKILL);
    };
    // Now found earlier in PATH too: a restart still runs the one the load
    // found, a reload takes the new one (the unit is unchanged: no
    // restart by the reload itself).
    program("early");
    kill_probe(&tend);
    s.await_lines("runs", 2);
    // Answered once the units are read again.
    let reload = output(Command::new(common::tend()).args(["ctl", "--socket", &s.p("ctl.sock"), "reload"]));
    assert!(reload.status.success(), "{reload:?}");
    kill_probe(&tend);
    let runs = s.await_lines("runs", 3);
    stop(&tend);
    let (_, _, log) = s.finish(tend);
    assert_eq!(runs, ["late", "late", "early"], "{log}");
}
