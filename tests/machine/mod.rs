//! Helpers of the confinement and escape tests: a demo rootfs, booted in
//! the background, reached with `tend ctl -M NAME exec`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;

pub const LIMIT: Duration = Duration::from_secs(20);

/// A demo rootfs (rootfs-template/build) in a scratch directory.
pub struct Demo {
    pub dir: TempDir,
}

impl Demo {
    pub fn new(tag: &str) -> Demo {
        let dir = TempDir::new(tag);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-template/build");
        let out = output(Command::new(script).arg(dir.path("rootfs")));
        assert!(out.status.success(), "build: {}", String::from_utf8_lossy(&out.stderr));
        Demo { dir }
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path("rootfs")
    }

    /// `tend boot ROOTFS --name NAME ARGS...`.
    pub fn boot(&self, name: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(tend());
        cmd.arg("boot").arg(self.rootfs()).args(["--name", name]).args(args);
        cmd.env_remove("RUST_BACKTRACE")
            .env_remove("TEND_LOG")
            .env_remove("NOTIFY_SOCKET");
        cmd
    }

    /// Boots in the background and waits for the registry entry and the
    /// demo's services to be ready (or for PID 1 when there is a command).
    pub fn start(&self, name: &str, args: &[&str]) -> Machine {
        let child = self
            .boot(name, args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let machine = Machine {
            name: name.into(),
            child,
        };
        let (pid1, _) = await_entry(name);
        if !args.contains(&"--") {
            let (code, out, err) = ctl(name, &["wait", "httpd", "syslogd", "--for", "ready"], "");
            assert_eq!(code, 0, "{out}{err}");
        }
        let _ = pid1;
        machine
    }
}

/// A booted machine, shut down (or killed) on drop.
pub struct Machine {
    pub name: String,
    pub child: Child,
}

impl Machine {
    /// `tend ctl -M NAME exec -- ARGS`: (code, stdout, stderr).
    pub fn exec(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["exec", "--"];
        all.extend(args);
        ctl(&self.name, &all, "")
    }

    /// `sh -c SCRIPT` inside.
    pub fn sh(&self, script: &str) -> (i32, String, String) {
        self.exec(&["/bin/sh", "-c", script])
    }

    pub fn pid1(&self) -> u32 {
        await_entry(&self.name).0
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = ctl(&self.name, &["shutdown"], "");
        if await_exit(&mut self.child).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn await_exit(child: &mut Child) -> Option<()> {
    let deadline = std::time::Instant::now() + LIMIT;
    while std::time::Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// The registry entry of `name` once PID 1 is known: (PID 1's host pid, launcher pid).
pub fn await_entry(name: &str) -> (u32, u32) {
    let path = PathBuf::from(format!("/run/tend/machines/{name}.json"));
    await_some("the registry entry", LIMIT, || {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
        let pid = v["pid"].as_u64()? as u32;
        (pid > 0).then_some((pid, v["launcher"].as_u64()? as u32))
    })
}

/// `tend ctl -M NAME ARGS...` from the host, stdin given.
pub fn ctl(name: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(tend())
        .args(["ctl", "-M", name])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let code = {
        use std::os::unix::process::ExitStatusExt;
        out.status
            .code()
            .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0))
    };
    (
        code,
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs to the end: (code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    let code = out
        .status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
    (
        code,
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A `Name:\tHEX` field of a /proc status text.
pub fn status_hex(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

/// A `Name:\tN` field of a /proc status text.
pub fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

pub fn mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// tests/escape/probe.c built static (once per test binary), copied into
/// `rootfs` as /usr/bin/probe.
pub fn install_probe(rootfs: &Path) {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let binary = BUILT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/escape/probe.c");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("probe-{}", std::process::id()));
        let built = output(Command::new("cc").args(["-static", "-O1", "-o"]).arg(&out).arg(&src));
        assert!(built.status.success(), "cc: {}", String::from_utf8_lossy(&built.stderr));
        out
    });
    std::fs::copy(binary, rootfs.join("usr/bin/probe")).unwrap();
}

/// `probe NAME...` output: NAME -> (allowed, detail).
pub fn probe_results(out: &str) -> std::collections::BTreeMap<String, (bool, String)> {
    out.lines()
        .filter_map(|l| {
            let mut words = l.splitn(3, ' ');
            let name = words.next()?.to_string();
            let allowed = match words.next()? {
                "allowed" => true,
                "refused" => false,
                _ => return None,
            };
            Some((name, (allowed, words.next().unwrap_or("").to_string())))
        })
        .collect()
}
