//! Issue 12's supervision rules for real: `tend init` as PID 1 of a fresh
//! PID namespace with fail-fast units, a notify watchdog and schedules.
//! Needs root.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
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

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path(name)
    }

    /// The path of scratch file `name`, as text for unit files.
    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn unit(&self, name: &str, toml: &str) {
        std::fs::write(self.path("units").join(format!("{name}.toml")), toml).unwrap();
    }

    /// `tend init --units DIR --socket PATH ARGS...` as PID 1; its output
    /// goes to `tend.out` and `tend.log`; stopped however the test ends.
    fn init(&self, args: &[&str]) -> StopOnDrop {
        self.init_at(args, None)
    }

    /// As `init`, with tend's wall clock starting at `wall` (Unix seconds).
    fn init_at(&self, args: &[&str], wall: Option<u64>) -> StopOnDrop {
        let (units, socket) = (self.p("units"), self.p("ctl.sock"));
        let mut all = vec!["init", "--units", &units, "--socket", &socket];
        all.extend(args);
        let mut cmd = tend_as_pid1(&all);
        if let Some(wall) = wall {
            cmd.env("TEND_TEST_WALL_CLOCK", wall.to_string());
        }
        let out = std::fs::File::create(self.path("tend.out")).unwrap();
        let log = std::fs::File::create(self.path("tend.log")).unwrap();
        cmd.stdin(Stdio::null()).stdout(out).stderr(log);
        StopOnDrop(cmd.spawn().unwrap())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("tend.log")).unwrap_or_default()
    }

    /// `tend ctl status`'s output.
    fn status(&self) -> String {
        let socket = self.p("ctl.sock");
        let out = output(std::process::Command::new(tend()).args(["ctl", "--socket", &socket, "status"]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn lines(&self, name: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.path(name)).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }

    /// Waits for tend to exit: (code, its log).
    fn finish(&self, mut tend: StopOnDrop) -> (i32, String) {
        let code = exit_code_within(&mut tend.0, LIMIT);
        (code, self.log())
    }
}

/// A service that logs `up` and, on SIGTERM, `stopped` before exiting 0.
fn graceful(file: &str) -> String {
    format!(
        "command = \"trap 'echo stopped >> {file}; exit 0' TERM; echo up >> {file}; while :; do sleep 0.05; done\"\n"
    )
}

#[test]
fn a_failing_fail_fast_service_ends_everything_with_its_code_root() {
    let s = Setup::new("failfast");
    let side = s.p("side");
    s.unit("side", &graceful(&side));
    // Fails once the neighbour is up, so its stop handler is in place.
    s.unit(
        "job",
        &format!(
            "command = \"until [ -s {side} ]; do sleep 0.01; done; exit 7\"\nrestart = \"no\"\non-failure = \"shutdown\"\n"
        ),
    );
    let (code, log) = s.finish(s.init(&[]));
    assert_eq!(code, 7, "{log}");
    assert_eq!(
        s.lines("side"),
        ["up", "stopped"],
        "the neighbour stopped gracefully\n{log}"
    );
    assert!(log.contains("job: failed"), "{log}");
}

#[test]
fn on_failure_shutdown_on_the_command_line_is_every_units_default_root() {
    let s = Setup::new("failfast-default");
    let side = s.p("side");
    s.unit("side", &graceful(&side));
    s.unit(
        "job",
        &format!("command = \"until [ -s {side} ]; do sleep 0.01; done; kill -9 $$\"\nrestart = \"no\"\n"),
    );
    let (code, log) = s.finish(s.init(&["--on-failure", "shutdown"]));
    assert_eq!(code, 128 + 9, "{log}");
    assert_eq!(s.lines("side"), ["up", "stopped"], "{log}");
}

#[test]
fn a_notify_service_that_stops_sending_watchdog_is_restarted_root() {
    let s = Setup::new("watchdog");
    let runs = s.p("runs");
    // Pings every 0.1s for 1.5s (three intervals: the pings keep it alive),
    // then falls silent.
    let script = format!(
        "[ \\\"$WATCHDOG_PID\\\" = $$ ] && echo run $WATCHDOG_USEC >> {runs}; systemd-notify --ready; \
         for i in $(seq 15); do systemd-notify WATCHDOG=1; sleep 0.1; done; \
         echo pinged >> {runs}; exec sleep 1000"
    );
    s.unit(
        "daemon",
        &format!("type = \"notify\"\ncommand = \"{script}\"\nwatchdog = \"500ms\"\nrestart-delay = \"10ms\"\n"),
    );
    let tend = s.init(&[]);
    let lines = await_some("a second run", LIMIT, || {
        let lines = s.lines("runs");
        (lines.len() >= 3).then_some(lines)
    });
    send(await_child(tend.0.id()), libc::SIGTERM);
    let (_, log) = s.finish(tend);
    assert_eq!(lines[..3], ["run 500000", "pinged", "run 500000"], "{log}");
    assert!(log.contains("daemon: stopping (watchdog timeout"), "{log}");
}

/// `WATCHDOG_USEC=` from the service itself: a unit without a watchdog
/// gets one for that run, and the service is stopped when it falls silent.
#[test]
fn a_service_that_sets_its_own_watchdog_interval_is_held_to_it_root() {
    let s = Setup::new("watchdog-usec");
    let runs = s.p("runs");
    let script =
        format!("echo run >> {runs}; systemd-notify --ready; systemd-notify WATCHDOG_USEC=300000; exec sleep 1000");
    s.unit(
        "daemon",
        &format!("type = \"notify\"\ncommand = \"{script}\"\nrestart = \"no\"\n"),
    );
    let tend = s.init(&[]);
    let pid1 = await_child(tend.0.id());
    await_true("its watchdog's stop", LIMIT, || {
        s.log().contains("daemon: stopping (watchdog timeout")
    });
    send(pid1, libc::SIGTERM);
    let (_, log) = s.finish(tend);
    assert!(log.contains("no WATCHDOG=1 within 300ms"), "{log}");
    assert_eq!(s.lines("runs"), ["run"], "{log}");
}

#[test]
fn a_schedule_of_every_minute_runs_at_the_minute_boundary_root() {
    let s = Setup::new("schedule");
    let runs = s.p("runs");
    s.unit(
        "job",
        &format!("type = \"oneshot\"\ncommand = \"echo ran >> {runs}\"\nschedule = \"* * * * *\"\n"),
    );
    // tend's wall clock starts two seconds before a minute boundary.
    let boundary: u64 = 1_796_000_040;
    let at = |secs: u64| {
        let time = std::time::UNIX_EPOCH + Duration::from_secs(secs);
        humantime::format_rfc3339_seconds(time).to_string()
    };
    let tend = s.init_at(&[], Some(boundary - 2));
    await_true("the run due", LIMIT, || {
        s.log().contains(&format!("job: run due at {}", at(boundary)))
    });
    let second = format!("next run {}", at(boundary + 60));
    await_true(&second, LIMIT, || s.status().contains(&second));
    await_true("the run", LIMIT, || s.lines("runs") == ["ran"]);
    send(await_child(tend.0.id()), libc::SIGTERM);
    let (code, log) = s.finish(tend);
    assert_eq!(code, 0, "{log}");
    assert_eq!(s.lines("runs"), ["ran"], "one run only\n{log}");
    assert!(log.contains("job: exited"), "{log}");
}
