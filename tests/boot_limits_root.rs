//! `tend boot --memory --cpus --pids`: the whole machine (PID 1, its
//! services, `ctl exec` commands) in one cgroup the launcher makes in this
//! host's hierarchies (v1 and v2 here) and removes at the end. Needs root
//! and busybox-static (the demo rootfs).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(30);

fn build(dest: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-template/build");
    let out = output(Command::new(script).arg(dest));
    assert!(
        out.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The host cgroup of `pid` in the v1 hierarchy `controller`.
fn v1_cgroup(pid: u32, controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        let ours = names.split(',').any(|n| n == controller);
        ours.then(|| {
            Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/'))
        })
    })
}

fn pid1_of(name: &str) -> u32 {
    let path = PathBuf::from(format!("/run/tend/machines/{name}.json"));
    await_some("the registry entry", LIMIT, || {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
        let pid = v["pid"].as_u64()? as u32;
        (pid > 0 && Path::new(&format!("/proc/{pid}")).exists()).then_some(pid)
    })
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Kills the boot however the test ends.
struct TermOnDrop(std::process::Child);

impl Drop for TermOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: kill takes plain integers.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let _ = exit_code_within(&mut self.0, LIMIT);
        }
    }
}

#[test]
fn boot_memory_cpus_pids_bound_the_whole_machine_root() {
    if v1_cgroup(std::process::id(), "memory").is_none() {
        eprintln!("no v1 memory hierarchy here: this test is for hybrid hosts");
        return;
    }
    let dir = TempDir::new("boot-limits");
    let rootfs = dir.path("rootfs");
    build(&rootfs);
    let name = format!("bounded-{}", std::process::id());
    // Inside: an allocation past the machine's memory is OOM-killed (137),
    // then it waits to be looked at from the host.
    let script = "head -c 104857600 /dev/zero | tail; echo alloc=$? > /run/alloc; exec sleep 1000";
    let child = Command::new(tend())
        .arg("boot")
        .arg(&rootfs)
        .args([
            "--name", &name, "--memory", "64M", "--cpus", "0.5", "--pids", "100", "--", "sh", "-c", script,
        ])
        .env_remove("RUST_BACKTRACE")
        .env_remove("TEND_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut boot = TermOnDrop(child);
    let pid1 = pid1_of(&name);
    let alloc = PathBuf::from(format!("/proc/{pid1}/root/run/alloc"));
    await_true("the allocation to end", LIMIT, || {
        std::fs::read_to_string(&alloc).is_ok_and(|t| t.contains("alloc="))
    });
    assert_eq!(
        std::fs::read_to_string(&alloc).unwrap().trim(),
        "alloc=137",
        "killed for memory"
    );
    let memory = v1_cgroup(pid1, "memory").unwrap();
    assert!(memory.ends_with("machine"), "{}", memory.display());
    assert_eq!(read(&memory, "memory.limit_in_bytes"), (64u64 << 20).to_string());
    let pids = v1_cgroup(pid1, "pids").unwrap();
    assert_eq!(read(&pids, "pids.max"), "100");
    assert_eq!(read(&v1_cgroup(pid1, "cpu").unwrap(), "cpu.cfs_quota_us"), "50000");
    // A `ctl exec` command runs in the machine's cgroup too.
    let exec = output(Command::new(tend()).args(["ctl", "-M", &name, "exec", "--", "cat", "/proc/self/cgroup"]));
    let inside = String::from_utf8_lossy(&exec.stdout);
    let line = inside
        .lines()
        .find(|l| l.contains(":memory:"))
        .unwrap_or_default()
        .to_string();
    assert!(line.ends_with("/machine"), "{inside}");
    let made: Vec<PathBuf> = ["memory", "pids", "cpu", "cpuacct"]
        .iter()
        .filter_map(|c| v1_cgroup(pid1, c)?.parent().map(Path::to_path_buf))
        .chain(cgroup_of(pid1).and_then(|c| c.parent().map(Path::to_path_buf)))
        .filter(|d| d.file_name().is_some_and(|n| n.to_string_lossy().starts_with("tend-")))
        .collect();
    assert!(made.len() >= 4, "{made:?}");
    send(boot.0.id(), libc::SIGTERM);
    exit_code_within(&mut boot.0, LIMIT);
    for d in &made {
        assert!(!d.exists(), "{} is left on the host", d.display());
    }
}
