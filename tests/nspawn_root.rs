//! tend as the init of a system container booted by `systemd-nspawn -b`
//! (needs root): the rootfs's /sbin/init is tend, which boots its units.
//!
//! nspawn runs as PEERS.md says it works here (`--keep-unit --register=no`,
//! an /etc/os-release in the rootfs). It gets our datagram socket as its
//! `$NOTIFY_SOCKET`, so with `--notify-ready=yes` the READY=1 it passes on
//! is the one tend sent. Its halt (SIGTERM to nspawn, which sends
//! SIGRTMIN+3 to the container's init) must run the units' stop handlers.

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;

use common::{await_some, exit_code_within, send, TempDir};

/// A unit that marks its start, and its stop when TERM reaches it.
const UNIT: &str = r#"
command = ["sh", "-c", "trap 'echo stopped > /stopped; exit 0' TERM; echo up > /up; while :; do sleep 1; done"]
ready = { exec = "test -e /up" }
ready-timeout = "20s"
"#;

/// Busybox, the test's tend at /sbin/init (with the libraries `ldd` names),
/// an os-release (nspawn wants one) and the unit.
fn build_rootfs(root: &Path) {
    for dir in ["bin", "sbin", "etc/tend/units", "tmp", "proc", "sys", "dev", "run"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is not installed (apt-get install busybox-static)");
    copy(Path::new(busybox), &root.join("bin/busybox"));
    for applet in ["sh", "sleep", "test", "echo"] {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let tend = Path::new(env!("CARGO_BIN_EXE_tend"));
    copy(tend, &root.join("sbin/init"));
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
    fs::write(root.join("etc/os-release"), "ID=tendtest\nNAME=\"tend test\"\n").unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    fs::write(root.join("etc/tend/units/svc.toml"), UNIT).unwrap();
}

fn copy(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
}

/// `systemd-nspawn -b -D ROOT ... INIT_ARGS`, telling `notify`.
fn nspawn(root: &Path, notify: &Path, log: &Path, init_args: &[&str]) -> Child {
    let log = fs::File::create(log).unwrap();
    // In a private mount namespace: on hybrid cgroup hosts nspawn briefly
    // mounts a hierarchy under /tmp, which must not show in the host's
    // mountinfo (other tests compare it). unshare execs nspawn: same pid.
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "systemd-nspawn"])
        .args([
            "--quiet",
            "--boot",
            "--keep-unit",
            "--register=no",
            "--notify-ready=yes",
        ])
        .arg("--directory")
        .arg(root)
        // Unique: the tests run at the same time, nspawn keeps per-name state.
        .arg(format!(
            "--machine=tend-test-{}-{}",
            std::process::id(),
            init_args.len()
        ))
        .args(init_args)
        .env("NOTIFY_SOCKET", notify)
        .env_remove("RUST_BACKTRACE")
        .env_remove("TEND_LOG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("systemd-nspawn is not installed (apt-get install systemd-container)")
}

/// Boots, awaits READY=1, halts, and checks the unit was stopped by tend.
fn boot_and_halt(init_args: &[&str]) {
    let dir = TempDir::new("nspawn");
    let root = dir.path("root");
    build_rootfs(&root);
    let socket_path = dir.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let log = dir.path("nspawn.log");
    let mut child = nspawn(&root, &socket_path, &log, init_args);
    let show = || fs::read_to_string(&log).unwrap_or_default();

    let mut buf = [0u8; 4096];
    await_some("READY=1 from nspawn", Duration::from_secs(30), || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("nspawn exited early ({status}): {}", show());
        }
        let n = socket.recv(&mut buf).ok()?;
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "READY=1")
            .then_some(())
    });
    // READY=1 came once the unit was ready, so it had started.
    assert!(root.join("up").exists(), "READY=1 before the unit was up: {}", show());

    // nspawn's halt: TERM to nspawn, SIGRTMIN+3 to tend, tend's shutdown.
    send(child.id(), libc::SIGTERM);
    let code = exit_code_within(&mut child, Duration::from_secs(30));
    assert_eq!(code, 0, "{}", show());
    let stopped = fs::read_to_string(root.join("stopped")).unwrap_or_default();
    assert_eq!(
        stopped.trim(),
        "stopped",
        "the unit's TERM handler did not run: {}",
        show()
    );
}

#[test]
fn nspawn_boot_reaches_ready_and_halts_gracefully_root() {
    boot_and_halt(&[]);
}

#[test]
fn init_arguments_do_not_stop_the_boot_root() {
    // What a kernel command line or nspawn hands a system's init.
    boot_and_halt(&["systemd.unit=multi-user.target", "single", "--some-flag"]);
}
