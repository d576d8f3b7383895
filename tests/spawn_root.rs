//! What every process tend starts gets, whatever state tend itself was
//! started in: an empty signal mask, exactly fds 0, 1 and 2 (services and
//! `ctl exec` commands), and the open files soft limit tend was started
//! with. tend runs as PID 1 of a fresh PID namespace, started by a careless
//! launcher: USR2 and RTMIN+5 blocked, SIGXFSZ and SIGCHLD ignored, an extra fd 10, and
//! an open files soft limit of 512. Needs root.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);
const SOFT_NOFILE: u64 = 512;

/// Makes `cmd` start the way a careless runtime or shell would start it.
fn careless_launcher(cmd: &mut Command, extra: &std::fs::File) {
    let extra = extra.as_raw_fd();
    // SAFETY: only async-signal-safe calls on stack data between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::sigaddset(&mut set, libc::SIGRTMIN() + 5);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            // Ignored SIGCHLD: the kernel would reap tend's children itself.
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            if libc::dup2(extra, 10) != 10 {
                return Err(std::io::Error::last_os_error());
            }
            let mut limit: libc::rlimit = std::mem::zeroed();
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = SOFT_NOFILE;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// What a child reports about itself: its signal mask and ignored signals,
/// its open fds (`ls` opens the directory as 3) and its soft limit.
const REPORT: &str = "grep -E '^Sig(Blk|Ign)' /proc/self/status; ls /proc/self/fd | tr '\\n' ' '; echo; ulimit -n";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The soft and hard open files limits of a host pid.
fn nofile(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

/// Checks a report; `fds` checks the list of open fds.
fn assert_clean_report(report: &str, fds: impl Fn(&str) -> bool, context: &str) {
    assert!(report.contains("SigBlk:\t0000000000000000"), "{report}{context}");
    assert!(report.contains("SigIgn:\t0000000000000000"), "{report}{context}");
    let lines: Vec<&str> = report.lines().collect();
    assert!(fds(lines.get(2).map_or("", |l| l.trim())), "{report}{context}");
    assert_eq!(lines.get(3).copied(), Some("512"), "{report}{context}");
}

fn exactly_0_1_2(fds: &str) -> bool {
    fds == "0 1 2 3"
}

#[test]
fn the_command_starts_clean_and_keeps_inherited_fds_root() {
    let dir = TempDir::new("careless");
    let extra = std::fs::File::create(dir.path("extra")).unwrap();
    let mut cmd = tend_as_pid1(&["--", "sh", "-c", REPORT]);
    careless_launcher(&mut cmd, &extra);
    let out = output(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The exit code still comes through with SIGCHLD ignored by the
    // launcher (directly: unshare would reset it).
    let mut cmd = Command::new(tend());
    cmd.args(["--", "sh", "-c", "exit 3"]);
    careless_launcher(&mut cmd, &extra);
    let mut tend = Running(cmd.stdin(Stdio::null()).spawn().unwrap());
    assert_eq!(exit_code_within(&mut tend.0, LIMIT), 3);
    // `tend -- CMD` passes inherited fds on, as tini does.
    // (The test harness may have leaked fds of its own: only 10 is checked.)
    assert_clean_report(&text(&out.stdout), |fds| fds.split(' ').any(|fd| fd == "10"), "");
}

/// A recorder of USR2 under `tend --`, started by the careless launcher.
#[test]
fn a_blocked_forwarded_signal_still_reaches_the_command_root() {
    let dir = TempDir::new("usr2");
    let log = dir.path("log");
    let extra = std::fs::File::create(dir.path("extra")).unwrap();
    let script = format!(
        "trap 'echo USR2 >> {0}' USR2; echo ready >> {0}; sleep 1000 & s=$!; while :; do wait $s; done",
        log.display()
    );
    let mut cmd = tend_as_pid1(&["--", "sh", "-c", &script]);
    careless_launcher(&mut cmd, &extra);
    let mut unshare = Running(cmd.stdin(Stdio::null()).spawn().unwrap());
    let tend = await_child(unshare.0.id());
    let has = |line: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .any(|l| l == line)
    };
    await_true("the child's trap", LIMIT, || has("ready"));
    // tend's own soft limit is raised to the hard one.
    let (soft, hard) = nofile(tend);
    assert_eq!(soft, hard, "tend's open files limit");
    send(tend, libc::SIGUSR2);
    await_true("USR2 at the child", LIMIT, || has("USR2"));
    send(await_child(tend), libc::SIGKILL);
    assert_eq!(exit_code_within(&mut unshare.0, LIMIT), 137);
}

/// Kills the process when a failed assertion unwinds the test.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tend init` started by the careless launcher, with one service that
/// writes its report to `DIR/service`.
struct Init {
    dir: TempDir,
    child: Child,
}

impl Init {
    fn start() -> Init {
        let dir = TempDir::new("careless-init");
        std::fs::create_dir(dir.path("units")).unwrap();
        let unit = format!(
            "command = \"{{ {}; }} > {}\"\nrestart = \"no\"\n",
            REPORT.replace('\\', "\\\\"),
            dir.path("service.tmp").display()
        );
        std::fs::write(dir.path("units/report.toml"), unit).unwrap();
        let extra = std::fs::File::create(dir.path("extra")).unwrap();
        let units = dir.path("units");
        let socket = dir.path("ctl.sock");
        let mut cmd = tend_as_pid1(&[
            "init",
            "--units",
            units.to_str().unwrap(),
            "--socket",
            socket.to_str().unwrap(),
        ]);
        careless_launcher(&mut cmd, &extra);
        let log = std::fs::File::create(dir.path("tend.log")).unwrap();
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let child = cmd.spawn().unwrap();
        Init { dir, child }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("tend.log")).unwrap_or_default()
    }

    fn ctl(&self, args: &[&str]) -> std::process::Output {
        let socket = self.dir.path("ctl.sock");
        output(
            Command::new(tend())
                .arg("ctl")
                .arg("--socket")
                .arg(&socket)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn await_file(path: &Path) -> String {
    await_some(&format!("{}", path.display()), LIMIT, || {
        std::fs::read_to_string(path).ok().filter(|t| t.lines().count() >= 4)
    })
}

#[test]
fn services_and_exec_commands_start_clean_with_fds_0_1_2_root() {
    let init = Init::start();
    // The service writes to a temp file: its report is whole once it is 4 lines.
    let report = await_file(&init.dir.path("service.tmp"));
    assert_clean_report(&report, exactly_0_1_2, &format!("\n{}", init.log()));
    let tend = await_child(init.child.id());
    let (soft, hard) = nofile(tend);
    assert_eq!(soft, hard, "tend's open files limit");
    await_true("the control socket", LIMIT, || init.ctl(&["ping"]).status.success());
    let out = init.ctl(&["exec", "--", "sh", "-c", REPORT]);
    assert!(out.status.success(), "{}{}", text(&out.stderr), init.log());
    assert_clean_report(&text(&out.stdout), exactly_0_1_2, &format!("\n{}", init.log()));
}
