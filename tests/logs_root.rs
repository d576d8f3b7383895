//! Log files tend writes for its services: rotated at their size with
//! exactly `max-files` kept, teed to tend's own output, and the size of
//! the buffer `tend ctl logs` reads; a service that writes its log (or its
//! notify socket) without pause does not hold the loop. Needs root.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

struct Tend {
    dir: TempDir,
    child: Child,
}

impl Tend {
    fn start(tag: &str, units: &[(&str, &str)]) -> Tend {
        Tend::start_with(tag, units, None)
    }

    /// With `nofile`: under that `RLIMIT_NOFILE` (soft and hard).
    fn start_with(tag: &str, units: &[(&str, &str)], nofile: Option<u32>) -> Tend {
        let dir = TempDir::new(tag);
        std::fs::create_dir(dir.path("units")).unwrap();
        for (name, toml) in units {
            let toml = toml.replace("@DIR", &dir.0.display().to_string());
            std::fs::write(dir.path("units").join(format!("{name}.toml")), toml).unwrap();
        }
        let units = dir.path("units");
        let socket = dir.path("ctl.sock");
        let args = [
            "init",
            "--units",
            units.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
        ];
        let mut cmd = tend_as_pid1(&args);
        if let Some(n) = nofile {
            let unshare = cmd.get_program().to_owned();
            let rest: Vec<_> = cmd.get_args().map(ToOwned::to_owned).collect();
            cmd = Command::new("prlimit");
            cmd.arg(format!("--nofile={n}:{n}")).arg("--").arg(unshare).args(rest);
            cmd.env_remove("RUST_BACKTRACE").env_remove("TEND_LOG");
        }
        let out = std::fs::File::create(dir.path("tend.out")).unwrap();
        let log = std::fs::File::create(dir.path("tend.log")).unwrap();
        cmd.stdin(Stdio::null()).stdout(out).stderr(log);
        let child = cmd.spawn().unwrap();
        Tend { dir, child }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path(name)).unwrap_or_default()
    }

    fn await_text(&self, name: &str, text: &str) {
        await_true(&format!("{text:?} in {name}"), LIMIT, || self.read(name).contains(text));
    }
}

impl Drop for Tend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LINES: &str =
    "i=0; while [ $i -lt 200 ]; do echo line-$(printf %03d $i)-xxxxxxxxxxxxxxxx; i=$((i+1)); done; exec sleep 1000";

#[test]
fn a_log_file_rotates_at_its_size_keeping_max_files_root() {
    let unit =
        format!("command = \"{LINES}\"\nstdout = {{ file = \"@DIR/out.log\", max-size = \"1K\", max-files = 3 }}\n");
    let tend = Tend::start("logs-rotate", &[("rot", &unit)]);
    tend.await_text("out.log", "line-199-");
    let size = |name: &str| std::fs::metadata(tend.dir.path(name)).map(|m| m.len()).unwrap_or(0);
    // 200 lines of 26 bytes: 39 per full file of at most 1 KiB
    for name in ["out.log.1", "out.log.2", "out.log.3"] {
        assert!((1024 - 26..=1024).contains(&size(name)), "{name}: {} bytes", size(name));
    }
    assert!(
        !Path::new(&tend.dir.path("out.log.4")).exists(),
        "exactly max-files kept"
    );
    // newest first: out.log follows out.log.1, which follows out.log.2...
    let first = |name: &str| tend.read(name).lines().next().unwrap_or_default().to_string();
    let last = |name: &str| tend.read(name).lines().last().unwrap_or_default().to_string();
    assert!(last("out.log.3") < first("out.log.2"));
    assert_eq!(last("out.log.1"), "line-194-xxxxxxxxxxxxxxxx");
    assert_eq!(first("out.log"), "line-195-xxxxxxxxxxxxxxxx");
    assert!(
        !tend.read("tend.out").contains("line-"),
        "not on tend's output without tee"
    );
}

#[test]
fn stdout_and_stderr_in_one_rotated_file_share_its_rotation_root() {
    // As `2>&1`: one file, one size, one rotation. Before, each stream
    // rotated the file from under the other, and one stream's lines were lost.
    const BOTH: &str = "i=0; while [ $i -lt 200 ]; do if [ $((i%2)) = 0 ]; then echo out-$(printf %03d $i)-xxxxxxxxxxxxxxxx; else echo err-$(printf %03d $i)-xxxxxxxxxxxxxxxx >&2; fi; i=$((i+1)); done; exec sleep 1000";
    let file = "{ file = \"@DIR/both.log\", max-size = \"1K\", max-files = 3 }";
    let unit = format!("command = \"{BOTH}\"\nstdout = {file}\nstderr = {file}\n");
    let tend = Tend::start("logs-both", &[("both", &unit)]);
    let all = || -> Vec<String> {
        let names = ["both.log.3", "both.log.2", "both.log.1", "both.log"];
        names
            .iter()
            .flat_map(|n| tend.read(n).lines().map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    let has = |lines: &[String], text: &str| lines.iter().any(|l| l.starts_with(text));
    await_true("the last line of each stream", LIMIT, || {
        let lines = all();
        has(&lines, "out-198-") && has(&lines, "err-199-")
    });
    let lines = all();
    // At most 4 files of 1 KiB (39 lines of 26 bytes): the oldest 44 or so
    // of 200 are gone, whichever stream's lines tend wrote first; the last
    // 40 of each are kept, and no line twice.
    for i in 160..200 {
        let stream = if i % 2 == 0 { "out" } else { "err" };
        assert!(
            has(&lines, &format!("{stream}-{i:03}-")),
            "{stream}-{i:03} lost: {lines:?}"
        );
    }
    let mut unique = lines.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "{lines:?}");
    assert!(lines.len() >= 150, "{} lines kept: {lines:?}", lines.len());
    assert!(
        !Path::new(&tend.dir.path("both.log.4")).exists(),
        "exactly max-files kept"
    );
}

#[test]
fn tee_writes_the_file_and_tends_output_root() {
    let unit = "command = \"echo hello-tee; echo oops >&2; exec sleep 1000\"\n\
                stdout = { file = \"@DIR/tee.log\", tee = true }\n\
                stderr = { file = \"@DIR/err.log\" , max-size = \"10M\" }\n";
    let tend = Tend::start("logs-tee", &[("teed", unit)]);
    tend.await_text("tend.out", "teed: hello-tee\n");
    tend.await_text("tee.log", "hello-tee\n");
    tend.await_text("err.log", "oops\n");
    assert!(!tend.read("tend.log").contains("oops"), "stderr does not tee");
}

#[test]
fn log_buffer_lines_bounds_what_ctl_logs_keeps_root() {
    let unit = "command = \"for i in 1 2 3 4 5 6 7 8 9; do echo n$i; done; exec sleep 1000\"\nlog-buffer-lines = 3\n";
    let t = Tend::start("logs-buffer", &[("few", unit)]);
    t.await_text("tend.out", "few: n9\n");
    let mut cmd = Command::new(tend());
    cmd.arg("ctl")
        .arg("--socket")
        .arg(t.dir.path("ctl.sock"))
        .args(["logs", "few"]);
    let out = output(&mut cmd);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n7\nn8\nn9\n");
}

/// A service that fails twice, then stays up, each run saying where its
/// stdout goes and writing an unended line; the pipes its runs had.
fn three_runs(tag: &str, nofile: Option<u32>) -> (Tend, Vec<String>) {
    // (The pipe's name before the count, which the test awaits.)
    let script = "n=$(cat @DIR/n 2>/dev/null || echo 0); n=$((n+1)); \
                  p=$(readlink /proc/$$/fd/1); echo $p >> @DIR/pipes; echo $n > @DIR/n; printf half-$n; \
                  [ $n -ge 3 ] && exec sleep 1000; exit 1";
    let unit = format!("command = \"{script}\"\nrestart-delay = \"0s\"\n");
    let tend = Tend::start_with(tag, &[("svc", &unit)], nofile);
    tend.await_text("n", "3");
    tend.await_text("tend.out", "svc: half-1\nsvc: half-2\n");
    assert!(
        !tend.read("tend.out").contains("half-3"),
        "the running one's line is not ended yet"
    );
    let pipes: Vec<String> = tend.read("pipes").lines().map(String::from).collect();
    assert!(
        pipes.len() == 3 && pipes.iter().all(|p| p.starts_with("pipe:")),
        "{pipes:?}"
    );
    (tend, pipes)
}

#[test]
fn a_restarted_service_writes_to_the_same_pipe_and_its_unended_lines_stay_whole_root() {
    let (_tend, pipes) = three_runs("logs-restart", None);
    assert!(
        pipes.iter().all(|p| *p == pipes[0]),
        "one pipe for every run: {pipes:?}"
    );
}

#[test]
fn under_a_low_descriptor_limit_each_run_gets_a_new_pipe_root() {
    // RLIMIT_NOFILE 40 leaves 40 - 20 - 16 = 4 descriptors for services:
    // the kept pipes and cgroup (6) do not fit, a pipe a run (3) does.
    let (tend, pipes) = three_runs("logs-restart-low", Some(40));
    assert!(
        pipes[0] != pipes[1] && pipes[1] != pipes[2],
        "a new pipe each run: {pipes:?}"
    );
    assert!(
        !tend.read("tend.log").contains("not started"),
        "{}",
        tend.read("tend.log")
    );
}

#[test]
fn a_service_that_writes_without_pause_does_not_hold_the_loop_root() {
    // `yes` fills its pipe faster than tend tells its lines: read to the
    // end in one turn, it kept every other service waiting (a second per
    // turn here). Each restart of `counter` takes a turn of the loop.
    let chatty = "command = \"yes\"\nstdout = { file = \"@DIR/chatty.log\", max-size = \"1M\", max-files = 2 }\n";
    let counter = "command = \"echo run >> @DIR/runs\"\nrestart = \"always\"\nrestart-delay = \"0s\"\n\
                   start-limit-burst = 1000000\n";
    let tend = Tend::start("logs-chatty", &[("chatty", chatty), ("counter", counter)]);
    tend.await_text("chatty.log", "y\ny\n");
    let runs = tend.read("runs").lines().count();
    await_true("100 more runs of counter", LIMIT, || {
        tend.read("runs").lines().count() >= runs + 100
    });
    // Rotated at 1M (several times by now): the file begins with a whole
    // line; awaited, as a read just after a rotation finds it empty.
    await_true("chatty.log to begin with a whole line", LIMIT, || {
        tend.read("chatty.log").starts_with("y\n")
    });
}

#[test]
fn a_service_that_notifies_without_pause_does_not_hold_the_loop_root() {
    let flood = "import os, socket\n\
                 path = os.environ['NOTIFY_SOCKET']\n\
                 path = chr(0) + path[1:] if path.startswith('@') else path\n\
                 s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
                 s.connect(path)\n\
                 s.send(b'READY=1')\n\
                 many = b'STATUS=busy\\n' * 300\n\
                 while True:\n    s.send(many)\n";
    let flooding = format!("type = \"notify\"\ncommand = [\"python3\", \"-c\", {flood:?}]\n");
    let counter = "command = \"echo run >> @DIR/runs\"\nrestart = \"always\"\nrestart-delay = \"0s\"\n\
                   start-limit-burst = 1000000\n";
    let tend = Tend::start("notify-flood", &[("flood", &flooding), ("counter", counter)]);
    tend.await_text("tend.log", "flood: ready");
    let runs = tend.read("runs").lines().count();
    await_true("100 more runs of counter", LIMIT, || {
        tend.read("runs").lines().count() >= runs + 100
    });
}
