//! tend as the ENTRYPOINT of a real OCI container run by crun (needs root),
//! as tests/runc_root.rs does with runc.
//!
//! crun 1.8 refuses hybrid cgroups ("drop all controllers from cgroupv2"),
//! which these machines have: every crun command runs in a private mount
//! namespace where the v2 hierarchy at /sys/fs/cgroup/unified is unmounted
//! (see PEERS.md); where there is none (pure v1 or pure v2), the umount fails
//! harmlessly. Conditions are awaited with deadlines, never slept for.

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

mod common;

use common::await_some;

/// A bundle and crun's state for it; dropping it deletes both.
struct Container {
    id: String,
    dir: PathBuf,
    run: Option<Child>,
}

impl Container {
    /// A busybox bundle whose process is `tend -- ARGS`.
    fn new(args: &[&str]) -> Container {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "tend-crun-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&id);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("state")).unwrap();
        let c = Container { id, dir, run: None };
        build_rootfs(&c.dir.join("rootfs"));
        c.write_config(args);
        c
    }

    /// `crun --root STATE ARGS` where crun accepts this machine's cgroups.
    fn crun(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "-m",
            "sh",
            "-c",
            "umount /sys/fs/cgroup/unified 2>/dev/null; exec crun \"$@\"",
            "crun",
        ]);
        cmd.arg("--root").arg(self.dir.join("state")).args(args);
        cmd.env_remove("RUST_BACKTRACE")
            .env_remove("TEND_LOG")
            .stdin(Stdio::null());
        cmd
    }

    fn write_config(&self, args: &[&str]) {
        let out = Command::new("crun")
            .arg("spec")
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "crun spec: {out:?}");
        let path = self.dir.join("config.json");
        let mut config: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        config["process"]["terminal"] = false.into();
        let mut argv = vec!["/sbin/tend", "--"];
        argv.extend_from_slice(args);
        config["process"]["args"] = argv.into();
        fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    }

    fn start(&mut self) {
        let log = fs::File::create(self.dir.join("run.log")).unwrap();
        let bundle = self.dir.to_string_lossy().into_owned();
        let child = self
            .crun(&["run", "--bundle", &bundle, &self.id])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.run = Some(child);
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("run.log")).unwrap_or_default()
    }

    /// Host pid of tend once crun reports the container running.
    fn await_running(&mut self) -> u32 {
        let id = self.id.clone();
        await_some("the container to be running", Duration::from_secs(10), || {
            if let Some(status) = self.run.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("crun run exited early ({status}): {}", self.log());
            }
            let out = self.crun(&["state", &id]).output().ok()?;
            let state: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            (state["status"] == "running").then_some(())?;
            state["pid"].as_u64().and_then(|p| u32::try_from(p).ok())
        })
    }

    fn exit_code_within(&mut self, limit: Duration) -> i32 {
        let child = self.run.as_mut().expect("container not started");
        let status = await_some("the container to exit", limit, || child.try_wait().ok().flatten());
        status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    }

    fn kill(&self, signal: &str) {
        let out = self.crun(&["kill", &self.id, signal]).output().unwrap();
        assert!(out.status.success(), "crun kill {signal}: {out:?}");
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self
            .crun(&["delete", "-f", &self.id])
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

/// Busybox and the test's tend, with the libraries `ldd` names for it.
fn build_rootfs(root: &Path) {
    for dir in ["bin", "sbin", "proc", "dev", "sys", "tmp"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is not installed (apt-get install busybox-static)");
    copy(Path::new(busybox), &root.join("bin/busybox"));
    for applet in ["sh", "sleep", "true"] {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let tend = Path::new(env!("CARGO_BIN_EXE_tend"));
    copy(tend, &root.join("sbin/tend"));
    let out = Command::new("ldd").arg(tend).output().unwrap();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(lib) = path.filter(|p| p.starts_with('/')) {
            copy(Path::new(lib), &root.join(&lib[1..]));
        }
    }
}

fn copy(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
}

/// The command lines of the children of `pid`.
fn children(pid: u32) -> Vec<(u32, String)> {
    let list = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    list.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .map(|p: u32| {
            let raw = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let line = raw
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            (p, line)
        })
        .collect()
}

/// Whether `pid` takes SIGTERM yet: caught by a handler, or blocked for its
/// signalfd (until then, as a namespace's init, it would drop a TERM from
/// outside).
fn catches_term(pid: u32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    ["SigCgt:", "SigBlk:"].iter().any(|key| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
    })
}

#[test]
fn crun_run_passes_exit_codes_root() {
    for (args, want) in [
        (&["sh", "-c", "exit 3"][..], 3),
        (&["true"][..], 0),
        (&["no-such-program"][..], 127),
        (&["sh", "-c", "kill -9 $$"][..], 137),
    ] {
        let mut c = Container::new(args);
        c.start();
        assert_eq!(
            c.exit_code_within(Duration::from_secs(20)),
            want,
            "{args:?}: {}",
            c.log()
        );
    }
}

#[test]
fn crun_kill_term_stops_the_container_gracefully_root() {
    let mut c = Container::new(&["sleep", "1000"]);
    c.start();
    let init = c.await_running();
    await_some("tend to run sleep 1000", Duration::from_secs(10), || {
        (children(init).iter().any(|(_, l)| l == "sleep 1000") && catches_term(init)).then_some(())
    });
    c.kill("TERM");
    assert_eq!(c.exit_code_within(Duration::from_secs(10)), 143, "{}", c.log());
}

#[test]
fn orphans_in_a_crun_container_are_reaped_root() {
    let mut c = Container::new(&["sh", "-c", "(sleep 999 &); (sleep 999 &); exec sleep 1000"]);
    c.start();
    let init = c.await_running();
    let orphans = await_some("two orphans reparented to tend", Duration::from_secs(10), || {
        let orphans: Vec<u32> = children(init)
            .into_iter()
            .filter(|(_, l)| l == "sleep 999")
            .map(|(p, _)| p)
            .collect();
        (orphans.len() == 2 && catches_term(init)).then_some(orphans)
    });
    for pid in orphans {
        common::send(pid, libc::SIGKILL);
    }
    // Reaped: tend is left with its one child, and no zombie among them.
    await_some("tend to reap the orphans", Duration::from_secs(5), || {
        let left = children(init);
        let zombie = left.iter().any(|(p, _)| {
            fs::read_to_string(format!("/proc/{p}/stat"))
                .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
        });
        (left.len() == 1 && !zombie).then_some(())
    });
    c.kill("TERM");
    assert_eq!(c.exit_code_within(Duration::from_secs(10)), 143, "{}", c.log());
}
