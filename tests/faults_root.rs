//! `tend init` when the machine says no: forks failing with EAGAIN (a
//! `pids` cgroup at its limit), a service that fork-bombs, a log file on a
//! full file system, and `/run` read-only or full at start. Each as PID 1
//! of a fresh PID namespace. Needs root.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(30);

/// tend init as PID 1 (behind `wrapper`, a shell script run by `sh -c`
/// that ends by running "$@": the PID-1 command), its units written from
/// `(name, toml)` with `@DIR` the scratch directory; its output in a file.
struct Tend {
    dir: TempDir,
    child: Option<Child>,
    pid: u32,
}

impl Tend {
    fn start(tag: &str, units: &[(&str, &str)], wrapper: &str, enter: Option<&PidsCgroup>) -> Tend {
        let dir = TempDir::new(tag);
        std::fs::create_dir(dir.path("units")).unwrap();
        for (name, toml) in units {
            let toml = toml.replace("@DIR", &dir.0.display().to_string());
            std::fs::write(dir.path("units").join(format!("{name}.toml")), toml).unwrap();
        }
        let pid1 = tend_as_pid1(&["init", "--units", dir.path("units").to_str().unwrap()]);
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "set -e; {}; exec \"$@\"",
                wrapper.replace("@DIR", &dir.0.display().to_string())
            ))
            .arg("sh")
            .arg(pid1.get_program())
            .args(pid1.get_args())
            .env_remove("RUST_BACKTRACE")
            .env_remove("TEND_LOG")
            .env_remove("TEND_SOCKET")
            .env("XDG_RUNTIME_DIR", dir.path("xdg"));
        std::fs::create_dir(dir.path("xdg")).unwrap();
        std::fs::set_permissions(dir.path("xdg"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        if let Some(cgroup) = enter {
            cgroup.enter(&mut cmd);
        }
        let log = std::fs::File::create(dir.path("tend.log")).unwrap();
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let child = cmd.spawn().unwrap();
        let pid = find_tend(child.id());
        Tend {
            dir,
            child: Some(child),
            pid,
        }
    }

    /// `tend ctl ARGS` in PID 1's mount namespace (its /run), as it finds
    /// the socket by itself.
    fn ctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.pid.to_string())
            .arg("-m")
            .arg("--")
            .arg(tend())
            .arg("ctl")
            .args(args)
            .env_remove("TEND_SOCKET")
            .env("XDG_RUNTIME_DIR", self.dir.path("xdg"));
        output(&mut cmd)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("tend.log")).unwrap_or_default()
    }

    fn lines(&self, file: &str) -> usize {
        std::fs::read_to_string(self.dir.path(file))
            .unwrap_or_default()
            .lines()
            .count()
    }
}

impl Drop for Tend {
    fn drop(&mut self) {
        // SIGTERM to tend: it stops its services and removes its cgroups.
        send(self.pid, libc::SIGTERM);
        if let Some(mut child) = self.child.take() {
            let _ = await_some("tend to exit", LIMIT, || child.try_wait().ok().flatten());
        }
    }
}

/// The first process running tend at or below `pid`.
fn find_tend(pid: u32) -> u32 {
    await_some("tend's process", LIMIT, || {
        let mut pid = pid;
        loop {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            if exe == tend() {
                return Some(pid);
            }
            pid = *children(pid).first()?;
        }
    })
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A cgroup v1 `pids` hierarchy cgroup of the test's own (this host is
/// hybrid: pids limits only through v1), removed on drop.
struct PidsCgroup(PathBuf, std::ffi::CString);

impl PidsCgroup {
    fn new(tag: &str) -> Option<PidsCgroup> {
        let root = Path::new("/sys/fs/cgroup/pids");
        if !root.join("cgroup.procs").exists() {
            return None;
        }
        let path = root.join(format!("faults-test-{tag}-{}", std::process::id()));
        std::fs::create_dir(&path).unwrap();
        let procs = std::ffi::CString::new(path.join("cgroup.procs").into_os_string().into_encoded_bytes()).unwrap();
        Some(PidsCgroup(path, procs))
    }

    fn set_max(&self, max: &str) {
        std::fs::write(self.0.join("pids.max"), max).unwrap();
    }

    /// The command joins the cgroup before it runs.
    fn enter(&self, cmd: &mut Command) {
        let procs = self.1.clone();
        // SAFETY: between fork and exec only open, write and close, which
        // are async-signal-safe; `procs` was allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        await_some("the pids cgroup to empty", LIMIT, || {
            std::fs::remove_dir(&self.0)
                .ok()
                .or_else(|| (!self.0.exists()).then_some(()))
        });
    }
}

/// A /run of the test's own: its socket is no other test's.
const PRIVATE_RUN: &str = "mount -t tmpfs tmpfs /run";

const CRASH: &str = "command = \"date +%s%N >> @DIR/starts; exit 1\"\nrestart = \"always\"\nrestart-delay = \"100ms\"\nrestart-delay-max = \"400ms\"\nstart-limit-burst = 100000\n";

/// Issue 15: fork failing with EAGAIN (the `pids` cgroup tend runs in is
/// at its limit) fails the spawn, once per attempt, and the restart policy
/// paces the attempts; once forks work again, the service runs again.
#[test]
fn fork_eagain_applies_the_restart_policy_root() {
    let cgroup = PidsCgroup::new("eagain").expect("a v1 pids hierarchy on this host");
    let t = Tend::start("eagain", &[("crash", CRASH)], PRIVATE_RUN, Some(&cgroup));
    await_true("a first start", LIMIT, || t.lines("starts") >= 1);
    // Room for unshare and tend only: every fork fails with EAGAIN (a
    // limit below the count stops new forks, and kills nothing).
    cgroup.set_max("2");
    let failed = |t: &Tend| t.log().matches("crash: cannot").count();
    await_true("three failed starts", LIMIT, || failed(&t) >= 3);
    let log = t.log();
    assert!(log.contains("a process limit is reached"), "the cause is said: {log}");
    // Paced by the restart delay: asleep in between, not retrying at once.
    await_idle(t.pid);
    // Answered, and the policy is at work.
    let status = t.ctl(&["status", "crash"]);
    assert!(text(&status).contains("restart pending"), "{}", text(&status));
    cgroup.set_max("max");
    let starts = t.lines("starts");
    await_true("starts again once forks work", LIMIT, || t.lines("starts") > starts);
    // One line per attempt, each attempt a restart of the policy.
    let log = t.log();
    let lines = log.lines().filter(|l| l.contains("crash: cannot")).count();
    let status = t.ctl(&["status", "--json", "crash"]);
    let reply: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let restarts = reply["services"][0]["restarts"].as_u64().unwrap() as usize;
    assert!(
        lines <= restarts,
        "{lines} failure lines for {restarts} restarts:\n{log}"
    );
}

/// The processes of `uid`.
fn processes_of(uid: u32) -> usize {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
        .count()
}

/// Issue 15: a service that forks without end (held by `limits.nproc` as a
/// user of its own) while another keeps crashing: the crashing one keeps
/// being restarted, the socket answers, and stopping the bomb leaves none
/// of its processes.
#[test]
fn a_fork_bomb_is_held_and_stopped_root() {
    let user = TestUser::new("bomb");
    let bomb = format!(
        "command = \"b() {{ b & b & wait; }}; b\"\nuser = \"{}\"\nlimits = {{ nproc = 64 }}\nrestart = \"always\"\nrestart-delay = \"10ms\"\nstart-limit-burst = 100000\n",
        user.name
    );
    let t = Tend::start("bomb", &[("bomb", &bomb), ("crash", CRASH)], PRIVATE_RUN, None);
    // A shell that cannot fork may give up; restarted, the bomb goes on.
    await_true("the bomb near its limit", LIMIT, || processes_of(user.uid) >= 32);
    let starts = t.lines("starts");
    await_true("five restarts of the other service", LIMIT, || {
        t.lines("starts") >= starts + 5
    });
    for _ in 0..5 {
        let ping = t.ctl(&["ping"]);
        assert!(ping.status.success(), "{}", text(&ping));
    }
    let stop = t.ctl(&["stop", "bomb"]);
    assert!(stop.status.success(), "{}\n{}", text(&stop), t.log());
    await_true("no process of the bomb left", LIMIT, || processes_of(user.uid) == 0);
    let status = t.ctl(&["status", "bomb"]);
    assert!(text(&status).contains("exited"), "{}", text(&status));
    let starts = t.lines("starts");
    await_true("the other service still restarted", LIMIT, || {
        t.lines("starts") > starts
    });
    drop(t);
    assert_eq!(processes_of(user.uid), 0);
}

/// Issue 15: `/run` read-only, or full, when tend starts: the control
/// socket goes where the documented fallback says ($XDG_RUNTIME_DIR here),
/// and `tend ctl`, looking by the same rule, finds it.
#[test]
fn run_read_only_or_full_gives_the_fallback_socket_root() {
    for (how, mount) in [
        ("read-only", "mount -t tmpfs -o ro tmpfs /run"),
        ("full", "mount -t tmpfs -o size=4k,nr_inodes=1 tmpfs /run"),
    ] {
        let sleep = "command = \"sleep 100000\"\n";
        let t = Tend::start(how, &[("sleep", sleep)], mount, None);
        let socket = t.dir.path("xdg/tend/ctl.sock");
        await_true(&format!("{how}: the socket in XDG_RUNTIME_DIR"), LIMIT, || {
            socket.exists()
        });
        let status = t.ctl(&["status"]);
        assert!(status.status.success(), "{how}: {}\n{}", text(&status), t.log());
        assert!(text(&status).contains("sleep"), "{how}: {}", text(&status));
        assert!(!t.log().contains("running without it"), "{how}: {}", t.log());
    }
}

/// Issue 15: a service whose output goes to a file on a full file system
/// (a small tmpfs): tend says so once, not at each of its restarts, and
/// goes on restarting it.
#[test]
fn a_log_file_on_a_full_file_system_is_reported_once_root() {
    let unit = format!("{CRASH}stdout = {{ file = \"@DIR/full/out.log\" }}\n").replace(
        "date +%s%N >> @DIR/starts; exit 1",
        "date +%s%N >> @DIR/starts; echo lost; exit 1",
    );
    let wrapper = format!(
        "{PRIVATE_RUN}; mkdir @DIR/full; mount -t tmpfs -o size=8k tmpfs @DIR/full; \
         dd if=/dev/zero of=@DIR/full/fill bs=4k count=2 2>/dev/null || true"
    );
    let t = Tend::start("full", &[("crash", &unit)], &wrapper, None);
    await_true("five starts", LIMIT, || t.lines("starts") >= 5);
    let log = t.log();
    assert_eq!(log.matches("is on a full file system").count(), 1, "{log}");
    assert!(log.contains("crash: ") && log.contains("full/out.log"), "{log}");
    let status = t.ctl(&["status", "crash"]);
    assert!(text(&status).contains("crash"), "{}", text(&status));
}
