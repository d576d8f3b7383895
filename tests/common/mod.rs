//! Helpers shared by the integration tests: running tend, finding its
//! processes from the host, and awaiting conditions with a deadline.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn tend() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tend"))
}

/// `tend ARGS` as PID 1 of a fresh PID and mount namespace.
pub fn tend_as_pid1(args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"])
        .arg(tend())
        .args(args);
    cmd.env_remove("RUST_BACKTRACE").env_remove("TEND_LOG");
    cmd
}

/// Polls `check` until it returns `Some`, failing the test after `limit`.
pub fn await_some<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn await_true(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    await_some(what, limit, || check().then_some(()));
}

/// The pids of the direct children of `pid` (host view).
pub fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

/// The single child of `pid`, once it exists.
pub fn await_child(pid: u32) -> u32 {
    await_some("a child process", Duration::from_secs(10), || {
        children(pid).first().copied()
    })
}

/// Waits for `child` to exit within `limit` and returns its exit code (or
/// 128+N for a signal); kills it and fails when it does not.
pub fn exit_code_within(child: &mut Child, limit: Duration) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    let status = await_some("the process to exit", limit, || child.try_wait().ok().flatten());
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Context switches of a process, summed over its threads.
pub fn context_switches(pid: u32) -> u64 {
    let mut total = 0;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("process is gone");
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches") || line.starts_with("nonvoluntary_ctxt_switches") {
                total += line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// A fresh scratch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tend-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot create a temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        stop_processes_naming(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test that failed half-way leaves the tend it started running (and
/// the cgroups it holds): each process whose command line names `dir` is
/// asked to stop (SIGTERM, so tend removes what it made), then killed if
/// it has not within 5 s. A test that passed has stopped its own.
fn stop_processes_naming(dir: &std::path::Path) {
    let needle = dir.as_os_str().as_encoded_bytes();
    let naming = || -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let pids = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok());
        let named = |pid: &i32| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline.windows(needle.len()).any(|w| w == needle)
        };
        pids.filter(|pid| *pid != std::process::id() as i32)
            .filter(named)
            .collect()
    };
    let signal_all = |pids: &[i32], signal: i32| {
        for pid in pids {
            // SAFETY: kill takes plain integers.
            unsafe { libc::kill(*pid, signal) };
        }
    };
    let left = naming();
    if left.is_empty() {
        return;
    }
    signal_all(&left, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if naming().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_all(&naming(), libc::SIGKILL);
}

/// Runs a command with no stdin and captured output.
pub fn output(cmd: &mut Command) -> std::process::Output {
    cmd.stdin(Stdio::null()).output().expect("cannot run the command")
}

/// Sends a signal to a host pid.
pub fn send(pid: u32, signal: i32) {
    // SAFETY: kill takes plain integers.
    let rc = unsafe { libc::kill(pid as i32, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

/// Waits until `pid` sleeps where tend's loop waits: in epoll_wait, or
/// (`tend --`, whose only source is signals) in its signalfd's read.
pub fn await_idle(pid: u32) {
    await_true(
        "the loop to sleep in epoll_wait or its signalfd",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(format!("/proc/{pid}/wchan"))
                .is_ok_and(|w| w.contains("epoll_wait") || w.contains("signalfd_read"))
        },
    );
}

/// Stops tend started by [`tend_as_pid1`] (`launcher` is unshare) the way a
/// runtime does, with SIGTERM to tend itself (unshare blocks it), so tend
/// removes what it made on the host (its cgroups); kills it after `limit`.
pub fn stop_pid1(launcher: &mut Child, limit: Duration) {
    if let Ok(None) = launcher.try_wait() {
        if let Some(&tend) = children(launcher.id()).first() {
            // SAFETY: kill takes plain integers.
            unsafe { libc::kill(tend as i32, libc::SIGTERM) };
        }
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && matches!(launcher.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = launcher.kill();
    let _ = launcher.wait();
}

/// The cgroups machine `name`'s launcher made (`tend-boot-NAME-*`) in
/// these hierarchies under /sys/fs/cgroup (`unified` for v2 on a hybrid
/// host), as full paths.
pub fn machine_cgroups(hierarchies: &[&str], name: &str) -> Vec<String> {
    let prefix = format!("tend-boot-{name}-");
    hierarchies
        .iter()
        .flat_map(|h| {
            std::fs::read_dir(format!("/sys/fs/cgroup/{h}"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path().display().to_string())
        .collect()
}

/// A process killed (and reaped) however the test ends: a launcher whose
/// container dies with it, or any child a failed assertion would leave.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A [`tend_as_pid1`] launcher stopped as [`stop_pid1`] does however the
/// test ends: a failed assertion leaves no tend running.
pub struct StopOnDrop(pub Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        stop_pid1(&mut self.0, Duration::from_secs(10));
    }
}

/// Where the cgroup2 hierarchy is mounted, from this process's mountinfo.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mount_point = left.split_whitespace().nth(4)?;
        right.starts_with("cgroup2 ").then(|| PathBuf::from(mount_point))
    })
}

/// The host path of the cgroup2 `pid` is in.
pub fn cgroup_of(pid: u32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(cgroup2_mount()?.join(path.trim_start_matches('/')))
}

/// A user made for one test (with subordinate uid and gid ranges, from
/// useradd), removed with its home and ranges on drop: the host keeps no
/// user. Unique per test, so tests in parallel never share or race one.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    pub fn new(tag: &str) -> TestUser {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tend-{tag}-{}-{n}", std::process::id());
        shadow_tool("useradd", &["-m", "-s", "/bin/sh", &name]);
        let id = |flag: &str| -> u32 {
            let out = output(Command::new("id").args([flag, &name]));
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("id of the new user")
        };
        let (uid, gid) = (id("-u"), id("-g"));
        TestUser { name, uid, gid }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // -f: a process of the user may still be exiting.
        shadow_tool("userdel", &["-r", "-f", &self.name]);
        // userdel removes the subordinate ranges; make sure of it.
        for file in ["/etc/subuid", "/etc/subgid"] {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            let prefix = format!("{}:", self.name);
            if text.lines().any(|l| l.starts_with(&prefix)) {
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with(&prefix))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let _ = std::fs::write(file, kept);
            }
        }
    }
}

/// Runs useradd or userdel, again while another one holds the lock of
/// /etc/passwd (tests and other test binaries run at once).
fn shadow_tool(tool: &str, args: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = output(Command::new(tool).args(args));
        let err = String::from_utf8_lossy(&out.stderr);
        // userdel exits 12 when only the mail spool or home was missing.
        if out.status.success() || (tool == "userdel" && out.status.code() == Some(12)) {
            return;
        }
        if !err.contains("lock") || Instant::now() > deadline {
            if tool == "useradd" {
                panic!("{tool} {args:?}: {err}");
            }
            eprintln!("{tool} {args:?}: {err}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
