//! `tend boot` as a user meets it: on a terminal (one Ctrl-C, one graceful
//! shutdown), `--detach`ed (returns once the machine is up, keeps its own
//! log), and seen from inside (PID 1's command line names no host path).
//! Needs root.

mod common;

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

/// The demo rootfs (built by `rootfs-template/build`) and a units
/// directory of the test's own, in a scratch directory.
struct Demo {
    dir: TempDir,
}

impl Demo {
    fn new(tag: &str) -> Demo {
        let dir = TempDir::new(tag);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-template/build");
        let out = output(Command::new(script).arg(dir.path("rootfs")));
        assert!(out.status.success(), "build: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::create_dir(dir.path("units")).unwrap();
        Demo { dir }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path("rootfs")
    }

    fn unit(&self, name: &str, toml: &str) {
        std::fs::write(self.dir.path("units").join(format!("{name}.toml")), toml).unwrap();
    }

    /// `tend boot ROOTFS --name NAME ARGS...`.
    fn boot(&self, name: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(tend());
        cmd.arg("boot").arg(self.rootfs()).args(["--name", name]).args(args);
        cmd.env_remove("RUST_BACKTRACE")
            .env_remove("TEND_LOG")
            .env_remove("NOTIFY_SOCKET");
        cmd
    }

    /// With `--units` of the test's own directory.
    fn boot_units(&self, name: &str, args: &[&str]) -> Command {
        let units = self.dir.path("units");
        let mut cmd = self.boot(name, &["--units", units.to_str().unwrap()]);
        cmd.args(args);
        cmd
    }
}

/// Runs to the end within LIMIT: (code, stdout, stderr).
fn run(cmd: &mut Command) -> (i32, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = exit_code_within(&mut child, LIMIT);
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (code, text(&out.stdout), text(&out.stderr))
}

/// `tend ctl -M NAME ARGS...`.
fn ctl(name: &str, args: &[&str]) -> (i32, String, String) {
    run(Command::new(tend()).args(["ctl", "-M", name]).args(args))
}

fn machine_file(name: &str, ext: &str) -> PathBuf {
    PathBuf::from(format!("/run/tend/machines/{name}.{ext}"))
}

/// The registry entry's PID 1 (host pid), once known.
fn await_pid1(name: &str) -> u32 {
    await_some("the registry entry", LIMIT, || {
        let text = std::fs::read_to_string(machine_file(name, "json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let pid = v["pid"].as_u64()? as u32;
        (pid > 0).then_some(pid)
    })
}

/// Shuts the machine down from the host and waits until its files are gone.
fn shut_down(name: &str) {
    let (code, _, err) = ctl(name, &["shutdown"]);
    assert_eq!(code, 0, "{err}");
    await_true("the machine's files to go", LIMIT, || {
        ["json", "sock", "log"]
            .iter()
            .all(|ext| !machine_file(name, ext).exists())
    });
}

/// A detached machine shut down when the test fails half-way.
struct Machine(&'static str);

impl Drop for Machine {
    fn drop(&mut self) {
        if machine_file(self.0, "sock").exists() {
            let _ = ctl(self.0, &["shutdown"]);
        }
    }
}

/// A service that needs a second to stop after its TERM, ready once its
/// trap is set.
const SLOW_STOP: &str = r#"
command = ["/bin/sh", "-c", "trap 'sleep 1; echo stopped cleanly; exit 0' TERM; touch /run/trapped; while :; do sleep 1 & wait; done"]
ready = { exec = "test -e /run/trapped" }
"#;

/// `cmd` as the only job of a new session on a new terminal, as a shell
/// runs it in the foreground: (the launcher, the terminal's master side,
/// everything written to the terminal so far).
fn on_a_terminal(cmd: &mut Command) -> (KillOnDrop, std::fs::File, Arc<Mutex<Vec<u8>>>) {
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    // SAFETY: setsid and ioctl are async-signal-safe; stdin is the terminal.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = KillOnDrop(cmd.spawn().unwrap());
    // Our copies of the slave side are gone with `cmd`'s: reading the master
    // ends once the machine has closed the terminal.
    drop(std::mem::replace(cmd, Command::new("true")));
    let master = std::fs::File::from(pty.master);
    let mut reader = master.try_clone().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    (child, master, seen)
}

#[test]
fn one_ctrl_c_is_one_graceful_shutdown_root() {
    let demo = Demo::new("ctrlc");
    demo.unit("stopper", SLOW_STOP);
    let (mut launcher, mut master, seen) = on_a_terminal(&mut demo.boot_units("ctrlc", &[]));
    await_pid1("ctrlc");
    let (code, out, err) = ctl("ctrlc", &["wait", "stopper", "--for", "ready"]);
    assert_eq!(code, 0, "{out}{err}");
    // The terminal's INTR character: SIGINT to its foreground process group.
    master.write_all(b"\x03").unwrap();
    let code = exit_code_within(&mut launcher.0, LIMIT);
    let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(
        !text.contains("second shutdown"),
        "one Ctrl-C forced the shutdown:\n{text}"
    );
    assert_eq!(code, 0, "a graceful shutdown exits 0:\n{text}");
    await_true("the stop handler's line", LIMIT, || {
        String::from_utf8_lossy(&seen.lock().unwrap()).contains("stopped cleanly")
    });
}

#[test]
fn pid1_command_line_names_no_host_path_root() {
    let demo = Demo::new("cmdline");
    let launcher = demo
        .boot("cmdline", &[])
        .env("TEND_TEST_HOST_SECRET", "/host/only")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _launcher = KillOnDrop(launcher);
    await_pid1("cmdline");
    let (code, out, err) = ctl("cmdline", &["wait", "httpd", "--for", "ready"]);
    assert_eq!(code, 0, "{out}{err}");
    let rootfs = demo.rootfs().display().to_string();
    let binary = tend().display().to_string();
    let inside = |what: &str| {
        let (code, out, err) = ctl("cmdline", &["exec", "--", "sh", "-c", what]);
        assert_eq!(code, 0, "{err}");
        out.replace('\0', " ")
    };
    // In its user namespace PID 1 is not dumpable, so its environ may not
    // be readable at all: what can be read must name nothing of the host.
    for what in [
        "cat /proc/1/cmdline",
        "ps -o pid,args",
        "cat /proc/1/environ 2>/dev/null || true",
    ] {
        let out = inside(what);
        assert!(!out.contains(&rootfs), "{what} names the rootfs:\n{out}");
        assert!(!out.contains(&binary), "{what} names the binary:\n{out}");
        assert!(
            !out.contains("/host/only"),
            "{what} shows the launcher's environment:\n{out}"
        );
    }
    let cmdline = inside("cat /proc/1/cmdline");
    assert!(cmdline.starts_with("tend init"), "{cmdline:?}");
    shut_down("cmdline");
}

/// Ready a second after it starts.
const SLOW_START: &str = r#"
command = ["/bin/sh", "-c", "sleep 1; touch /run/slow.up; exec sleep 1000"]
ready = { exec = "test -e /run/slow.up" }
ready-timeout = "20s"
"#;

#[test]
fn detach_returns_once_the_machine_is_up_and_keeps_its_log_root() {
    let demo = Demo::new("detach-up");
    let _machine = Machine("detach-up");
    demo.unit("slow", SLOW_START);
    let (code, out, err) = run(&mut demo.boot_units("detach-up", &["--detach"]));
    assert_eq!(code, 0, "{out}{err}");
    // No waiting here: the units are up when --detach returns.
    let (code, status, err) = ctl("detach-up", &["status"]);
    assert_eq!(code, 0, "{err}");
    let slow = status.lines().find(|l| l.starts_with("slow")).unwrap_or_default();
    assert!(slow.contains("ready"), "slow is not up yet:\n{status}");
    assert!(machine_file("detach-up", "log").exists());
    // PID 1's own lines, with no service name.
    let (code, log, err) = ctl("detach-up", &["logs"]);
    assert_eq!(code, 0, "{err}");
    assert!(log.contains("slow: ready"), "{log}");
    let (code, last, _) = ctl("detach-up", &["logs", "-n", "1"]);
    assert_eq!((code, last.lines().count()), (0, 1), "{last}");
    shut_down("detach-up");
    assert!(!machine_file("detach-up", "notify").exists());
}

#[test]
fn detach_fails_with_the_reason_when_a_unit_fails_root() {
    let demo = Demo::new("detach-fail");
    let _machine = Machine("detach-fail");
    demo.unit("slow", SLOW_START);
    demo.unit("broken", "command = [\"/bin/false\"]\nrestart = \"no\"\n");
    let (code, out, err) = run(&mut demo.boot_units("detach-fail", &["--detach"]));
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("tend: machine detach-fail failed to boot: broken"),
        "{err}"
    );
    for ext in ["json", "sock", "log", "notify"] {
        assert!(!machine_file("detach-fail", ext).exists(), "{ext} left behind");
    }
}

#[test]
fn detach_reports_a_machine_that_ends_before_it_is_ready_root() {
    let demo = Demo::new("detach-end");
    let _machine = Machine("detach-end");
    // Never ready, and its end is the machine's.
    demo.unit(
        "app",
        "command = [\"/bin/sh\", \"-c\", \"exit 3\"]\nready = { exec = \"false\" }\nmain = true\nrestart = \"no\"\n",
    );
    let (code, out, err) = run(&mut demo.boot_units("detach-end", &["--detach"]));
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    // Seen failing, or seen ending: either way, why.
    assert!(
        err.contains("machine detach-end failed to boot: app")
            || err.contains("stopped before it was ready (exit code 3)"),
        "{err}"
    );
    // The detached launcher says why first, then removes the machine's
    // files.
    await_true("the machine's log removed", LIMIT, || {
        !machine_file("detach-end", "log").exists()
    });
}
