//! tend's output never stalls PID 1: with its stdout a pipe nobody reads,
//! services are still restarted and the control socket still answers; lines
//! that did not fit are dropped, and counted once the reader reads again.
//! Needs root.

mod common;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(30);

/// Bytes waiting in a pipe.
fn queued(fd: &impl AsRawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int at the pointer given.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0);
    n
}

/// The restarts of `name`, from `tend ctl status --json`; fails when the
/// answer does not come within LIMIT.
fn restarts(socket: &std::path::Path, name: &str) -> u64 {
    let mut cmd = Command::new(tend());
    cmd.arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(["--json", "status", name]);
    let path = std::env::temp_dir().join(format!("tend-test-ctl-{}-{name}", std::process::id()));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&path).unwrap())
        .stderr(std::fs::File::create(path.with_extension("err")).unwrap());
    let mut child = cmd.spawn().unwrap();
    let code = exit_code_within(&mut child, LIMIT);
    let err = std::fs::read_to_string(path.with_extension("err")).unwrap_or_default();
    // 3: the service named is not up (between two runs)
    assert!(code == 0 || code == 3, "ctl status failed: {err}");
    let reply: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("err"));
    reply["services"][0]["restarts"].as_u64().unwrap()
}

#[test]
fn a_stalled_stdout_reader_does_not_stall_supervision_root() {
    let dir = TempDir::new("output-stall");
    std::fs::create_dir(dir.path("units")).unwrap();
    // Far more than the pipe (64 KiB) and tend's queue (1 MiB) hold.
    std::fs::write(
        dir.path("units/chatty.toml"),
        "command = \"seq 1 400000; exec sleep 1000\"\n",
    )
    .unwrap();
    let crasher = "command = \"sleep 0.05; exit 1\"\nrestart-delay = \"50ms\"\nrestart-delay-max = \"50ms\"\n\
                   start-limit-burst = 100000\n";
    std::fs::write(dir.path("units/crasher.toml"), crasher).unwrap();
    let socket = dir.path("ctl.sock");
    let units = dir.path("units");
    let mut cmd = tend_as_pid1(&[
        "init",
        "--units",
        units.to_str().unwrap(),
        "--socket",
        socket.to_str().unwrap(),
    ]);
    let log = std::fs::File::create(dir.path("tend.log")).unwrap();
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
    let mut child = Killed(cmd.spawn().unwrap());
    let mut stdout = child.0.stdout.take().unwrap();

    // Nobody reads: the pipe fills up.
    // Full: more than half its capacity queued (writes that do not fit a
    // page's rest take a new page, so "full" is below the capacity) and no
    // longer growing. The capacity, not 64 KiB: a user over
    // pipe-user-pages-soft gets one-page pipes.
    // SAFETY: F_GETPIPE_SZ takes no argument and returns the size.
    let capacity = unsafe { libc::fcntl(stdout.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert!(capacity > 0, "F_GETPIPE_SZ");
    let mut last = -1;
    await_true("tend's stdout pipe to be full", LIMIT, || {
        let now = queued(&stdout);
        let full = now == last && now > capacity / 2;
        last = now;
        std::thread::sleep(Duration::from_millis(200));
        full
    });
    let stalled = Instant::now();
    let before = restarts(&socket, "crasher");
    await_true("restarts while the pipe is full", LIMIT, || {
        restarts(&socket, "crasher") >= before + 10
    });
    // The reader stays away for 5 s; supervision goes on meanwhile.
    while stalled.elapsed() < Duration::from_secs(5) {
        restarts(&socket, "crasher");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(restarts(&socket, "crasher") >= before + 10);

    // The reader is back: what was kept comes, then the count of the rest.
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    await_true("the drop count on stdout", LIMIT, || {
        String::from_utf8_lossy(&got.lock().unwrap()).contains(" lines dropped (output was blocked)")
    });
    let text = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
    assert!(
        text.starts_with("chatty: 1\nchatty: 2\n"),
        "{}",
        &text[..100.min(text.len())]
    );
}

/// tend, killed when the test ends, passed or failed.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
