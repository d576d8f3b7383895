//! tend as the ENTRYPOINT of a real OCI container run by runc (needs root).
//!
//! Each test builds a busybox rootfs with tend at /sbin/tend, writes the
//! bundle's config.json from `runc spec`, and runs it under a private runc
//! state directory with a unique container id. A guard deletes the container
//! and the bundle even when an assertion fails. Conditions are awaited with
//! deadlines, never slept for.

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

mod common;

use common::await_some;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Busybox applets the tests' commands use.
const APPLETS: &[&str] = &["sh", "sleep", "true"];

/// A container bundle and its runc state; dropping it deletes both.
struct Container {
    id: String,
    dir: PathBuf,
    run: Option<Child>,
}

impl Container {
    /// A bundle in a fresh temp dir whose process is `tend -- ARGS`.
    fn new(args: &[&str]) -> Container {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "tend-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&id);
        // A leftover of an earlier crashed run with the same pid is stale.
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("state")).expect("create bundle dir");
        let container = Container { id, dir, run: None };
        build_rootfs(&container.rootfs());
        container.write_config(args);
        container
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// `runc --root <private state dir> ARGS`: the private root keeps the
    /// tests apart from any other runc user on the machine.
    fn runc(&self) -> Command {
        let mut cmd = Command::new("runc");
        cmd.arg("--root").arg(self.dir.join("state"));
        cmd
    }

    /// config.json from `runc spec`, with tend as the process and no tty.
    fn write_config(&self, args: &[&str]) {
        let out = Command::new("runc")
            .args(["spec", "--bundle"])
            .arg(&self.dir)
            .output()
            .expect("run `runc spec`");
        assert!(out.status.success(), "runc spec: {out:?}");
        let path = self.dir.join("config.json");
        let text = fs::read_to_string(&path).expect("read config.json");
        let mut config: serde_json::Value = serde_json::from_str(&text).expect("parse config.json");
        let process = &mut config["process"];
        process["terminal"] = false.into();
        let mut argv = vec!["/sbin/tend", "--"];
        argv.extend_from_slice(args);
        process["args"] = argv.into();
        let text = serde_json::to_string_pretty(&config).expect("serialize config.json");
        fs::write(&path, text).expect("write config.json");
    }

    /// Starts `runc run` in the foreground: its exit status is the
    /// container's. Its output goes to files shown when a test fails.
    fn start(&mut self) {
        let out = fs::File::create(self.dir.join("run.log")).expect("create run.log");
        let err = out.try_clone().expect("dup run.log");
        let child = self
            .runc()
            .args(["run", "--bundle"])
            .arg(&self.dir)
            .arg(&self.id)
            .env_remove("RUST_BACKTRACE")
            .env_remove("TEND_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn `runc run`");
        self.run = Some(child);
    }

    /// What `runc run` printed so far (for failure messages).
    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(self.dir.join("run.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Host pid of the container's init (tend), once runc reports it
    /// running.
    fn await_running(&mut self) -> u32 {
        let id = self.id.clone();
        await_some("the container to be running", Duration::from_secs(10), || {
            if let Some(status) = self.run.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("runc run exited early ({status}): {}", self.log());
            }
            let out = self.runc().args(["state", &id]).output().ok()?;
            let state: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            if state["status"] != "running" {
                return None;
            }
            state["pid"].as_u64().and_then(|p| u32::try_from(p).ok())
        })
    }

    /// The container's exit code as `runc run` passes it on (128+N when
    /// runc itself is killed by signal N).
    fn exit_code_within(&mut self, limit: Duration) -> i32 {
        let child = self.run.as_mut().expect("container not started");
        let status = await_some("the container to exit", limit, || child.try_wait().ok().flatten());
        status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    }

    fn runc_kill(&self, signal: &str) {
        let out: Output = self
            .runc()
            .args(["kill", &self.id, signal])
            .output()
            .expect("run `runc kill`");
        assert!(out.status.success(), "runc kill {signal}: {out:?}");
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // Force-delete stops whatever still runs; then `runc run` returns.
        let _ = self
            .runc()
            .args(["delete", "-f", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut child) = self.run.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A busybox rootfs holding tend at /sbin/tend.
///
/// The test's tend (`CARGO_BIN_EXE_tend`) is dynamically linked: it goes in
/// with the libraries `ldd` names, at their host paths. That is faster and
/// sturdier than building a static tend from inside a test (a nested cargo
/// would wait on the build lock of the cargo running this test).
fn build_rootfs(root: &Path) {
    for dir in ["bin", "sbin", "proc", "dev", "sys", "tmp"] {
        fs::create_dir_all(root.join(dir)).expect("create rootfs dir");
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is not installed (apt-get install busybox-static)");
    copy(Path::new(busybox), &root.join("bin/busybox"));
    for applet in APPLETS {
        symlink("busybox", root.join("bin").join(applet)).expect("link busybox applet");
    }
    let tend = Path::new(env!("CARGO_BIN_EXE_tend"));
    copy(tend, &root.join("sbin/tend"));
    for lib in shared_libraries(tend) {
        let dest = root.join(lib.strip_prefix("/").expect("ldd path is absolute"));
        copy(&lib, &dest);
    }
}

/// Absolute paths of the shared objects `ldd` lists for `bin` (none for a
/// static binary).
fn shared_libraries(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    // Lines are "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)",
    // "/lib64/ld-linux-x86-64.so.2 (0x...)" or "linux-vdso.so.1 (0x...)".
    text.lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// Copies `from` (following symlinks) to `to`, creating parent dirs.
fn copy(from: &Path, to: &Path) {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).expect("create parent dir");
    }
    fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
}

/// Host pids of the children of `pid`, over all its threads.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The command line of `pid`, arguments joined by spaces.
fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The state letter of `pid` from /proc/PID/stat ('Z' for a zombie).
fn state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parens: the state follows the
    // last ")".
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Zombies among all processes in the PID namespace of `init` (host view).
fn zombies_in_namespace_of(init: u32) -> Vec<u32> {
    let Ok(ns) = fs::read_link(format!("/proc/{init}/ns/pid")) else {
        return Vec::new();
    };
    fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_ref() == Some(&ns))
        .filter(|pid| state(*pid) == Some('Z'))
        .collect()
}

/// Whether `pid` has a handler for, or blocks, SIGTERM: until then the
/// kernel drops a TERM sent to a namespace's init from outside.
fn takes_sigterm(pid: u32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let bit = 1u64 << (libc::SIGTERM - 1);
    status.lines().any(|line| {
        ["SigCgt:", "SigBlk:"].iter().any(|key| {
            line.strip_prefix(key)
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                .is_some_and(|mask| mask & bit != 0)
        })
    })
}

/// Waits until `init` runs a child whose command line is `want` and is
/// ready for TERM; returns the child.
fn await_child(init: u32, want: &str) -> u32 {
    await_some(&format!("tend to run `{want}`"), Duration::from_secs(10), || {
        let child = children(init).into_iter().find(|c| cmdline(*c) == want)?;
        takes_sigterm(init).then_some(child)
    })
}

#[test]
fn runc_run_passes_the_exit_code_root() {
    let mut c = Container::new(&["sh", "-c", "exit 3"]);
    c.start();
    let code = c.exit_code_within(Duration::from_secs(20));
    assert_eq!(code, 3, "runc run output: {}", c.log());
}

#[test]
fn runc_kill_term_stops_the_container_gracefully_root() {
    let mut c = Container::new(&["sleep", "1000"]);
    c.start();
    let init = c.await_running();
    await_child(init, "sleep 1000");
    c.runc_kill("TERM");
    // sleep dies of the forwarded TERM; tend exits 128+15 like tini.
    let code = c.exit_code_within(Duration::from_secs(10));
    assert_eq!(code, 143, "runc run output: {}", c.log());
}

#[test]
fn orphans_in_a_runc_container_are_reaped_root() {
    // Three orphans (`sleep 999`, their subshells gone) are reparented to
    // tend alive; the main command stays as `sleep 1000`.
    let mut c = Container::new(&[
        "sh",
        "-c",
        "(sleep 999 &); (sleep 999 &); (sleep 999 &); exec sleep 1000",
    ]);
    c.start();
    let init = c.await_running();
    await_child(init, "sleep 1000");
    let orphans = await_some("three orphans reparented to tend", Duration::from_secs(10), || {
        let orphans: Vec<u32> = children(init)
            .into_iter()
            .filter(|p| cmdline(*p) == "sleep 999")
            .collect();
        (orphans.len() == 3).then_some(orphans)
    });
    // Killing them from the host turns them into tend's zombies at once.
    for pid in &orphans {
        let pid = i32::try_from(*pid).expect("pid fits i32");
        kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill an orphan");
    }
    await_some("tend to reap every zombie", Duration::from_secs(5), || {
        let left = children(init);
        (left.len() == 1 && zombies_in_namespace_of(init).is_empty()).then_some(())
    });
    c.runc_kill("TERM");
    assert_eq!(
        c.exit_code_within(Duration::from_secs(10)),
        143,
        "runc run output: {}",
        c.log()
    );
}
