//! Every step of a real `tend boot` failed on purpose (`TEND_TEST_FAULT`,
//! see `src/sys/fault.rs`), one at a time: each failure is one error line
//! naming the step, exit 1, and the host left as it was: its mounts under
//! the test's paths, the registry, the sockets, the processes and the
//! cgroups. The steps are counted by the boot itself, so steps added later
//! are walked too. Needs root; the rootless walk runs as a user it creates.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

/// Errnos taken in turn, so more than one kind of failure is reported.
const ERRNOS: &[(&str, &str)] = &[
    ("EIO", "I/O error"),
    ("ENOSPC", "No space left on device"),
    ("EPERM", "Operation not permitted"),
];

fn build(dest: &Path, user: Option<&str>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-template/build");
    let mut cmd = match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(&script);
            c
        }
        None => Command::new(&script),
    };
    let out = output(cmd.arg(dest));
    assert!(out.status.success(), "build: {}", String::from_utf8_lossy(&out.stderr));
}

/// What the host holds that a boot could leave behind, as text to compare.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    /// mountinfo lines naming a path under the test's directory.
    mounts: Vec<String>,
    /// Files of the machine's name in the registry directory.
    registry: Vec<String>,
    /// Processes whose command line names the test's directory.
    processes: Vec<String>,
    /// Cgroups below the boots' own, and processes in it.
    cgroups: Vec<String>,
}

impl HostState {
    fn now(dir: &Path, registry: &Path, name: &str, cgroup: &Cgroup) -> HostState {
        let dir_text = dir.display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&dir_text))
            .map(str::to_string)
            .collect();
        let registry = std::fs::read_dir(registry)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|f| f.starts_with(&format!("{name}.")))
                    .collect()
            })
            .unwrap_or_default();
        let me = std::process::id().to_string();
        let processes = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
            .filter(|e| e.file_name().to_string_lossy() != me)
            .filter_map(|e| {
                let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                cmdline
                    .contains(&dir_text)
                    .then(|| format!("{:?} {cmdline}", e.file_name()))
            })
            .collect();
        // Made by the boot's PID 1 in its own cgroup: the test's, below.
        let cgroups = std::fs::read_dir(&cgroup.0)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .chain(
                std::fs::read_to_string(cgroup.0.join("cgroup.procs"))
                    .unwrap()
                    .lines()
                    .map(|p| format!("pid {p}")),
            )
            .collect();
        HostState {
            mounts,
            registry,
            processes,
            cgroups,
        }
    }
}

/// A cgroup v2 of the test's own that each boot starts in: what its PID 1
/// would make is found below it, with no other test's in the way. Not
/// named `tend-*`: a starting tend sweeps empty ones of those beside it.
struct Cgroup(PathBuf, std::ffi::CString);

impl Cgroup {
    fn new() -> Cgroup {
        let path = cgroup2_mount()
            .expect("a cgroup2 hierarchy")
            .join(format!("boot-fault-test-{}", std::process::id()));
        std::fs::create_dir(&path).unwrap();
        let procs = std::ffi::CString::new(path.join("cgroup.procs").into_os_string().into_encoded_bytes()).unwrap();
        Cgroup(path, procs)
    }

    /// The command joins the cgroup before it runs.
    fn enter(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
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

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// One boot with `TEND_TEST_FAULT` set, in `cgroup`: (code, stderr).
fn boot(cmd: &mut Command, fault: &str, cgroup: &Cgroup) -> (i32, String) {
    cgroup.enter(cmd);
    cmd.env("TEND_TEST_FAULT", fault)
        .env_remove("RUST_BACKTRACE")
        .env_remove("TEND_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let code = exit_code_within(&mut child, LIMIT);
    (code, reader.join().unwrap())
}

/// Fails each step in turn until the boot says the fault came after its
/// last step (the count may shrink once: a mount point made by the first
/// boot is there for the next); `dir` holds everything of the test.
fn walk(make: &dyn Fn() -> Command, dir: &Path, registry: &Path, name: &str) {
    let cgroup = Cgroup::new();
    let before = HostState::now(dir, registry, name, &cgroup);
    assert!(before.registry.is_empty() && before.processes.is_empty(), "{before:?}");
    let mut n = 1;
    loop {
        let (errno, text) = ERRNOS[n % ERRNOS.len()];
        let (code, err) = boot(&mut make(), &format!("{n}:{errno}"), &cgroup);
        if err.contains("not reached") {
            assert_eq!(code, 0, "a boot past its last step runs normally: {err}");
            assert!(n > 10, "a boot has more steps than {n}: {err}");
            break;
        }
        // Warnings about the options (a rootfs others can reach,
        // --privileged) come before the boot and are not its error.
        let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("tend: warning: ")).collect();
        assert_eq!(code, 1, "step {n}: {err}");
        assert_eq!(lines.len(), 1, "step {n}: one error line: {err}");
        assert!(
            lines[0].starts_with("tend: cannot ") && lines[0].ends_with(&format!(": {text}")),
            "step {n}: names the step and the cause: {err}"
        );
        let after = HostState::now(dir, registry, name, &cgroup);
        assert_eq!(after, before, "step {n} ({err}) left something on the host");
        n += 1;
        assert!(n < 10_000, "the steps never end");
    }
    assert_eq!(
        HostState::now(dir, registry, name, &cgroup),
        before,
        "after the full boot"
    );
    eprintln!("{name}: walked {} steps", n - 1);
}

/// One test for the three walks, in turn: a full boot of one (counting its
/// steps) would otherwise make cgroups while another compares them.
#[test]
fn every_step_of_a_boot_fails_cleanly_root() {
    rootful();
    in_a_user_namespace();
    rootless();
}

fn rootful() {
    let dir = TempDir::new("fault");
    build(&dir.path("rootfs"), None);
    std::fs::create_dir(dir.path("shared")).unwrap();
    let name = format!("fault-{}", std::process::id());
    let make = || {
        let mut cmd = Command::new(tend());
        cmd.arg("boot")
            .arg(dir.path("rootfs"))
            .args([
                "--name",
                &name,
                "--privileged",
                "--hostname",
                "box",
                "--read-only",
                "--tmpfs",
                "/scratch",
            ])
            .arg("--bind")
            .arg(format!("{}:/shared:ro", dir.path("shared").display()))
            .args(["--", "/bin/true"]);
        cmd
    };
    walk(&make, &dir.0, Path::new("/run/tend/machines"), &name);
}

fn in_a_user_namespace() {
    let dir = TempDir::new("fault-userns");
    build(&dir.path("rootfs"), None);
    let name = format!("fault-userns-{}", std::process::id());
    let make = || {
        let mut cmd = Command::new(tend());
        cmd.arg("boot")
            .arg(dir.path("rootfs"))
            .args(["--name", &name, "--", "/bin/true"]);
        cmd
    };
    walk(&make, &dir.0, Path::new("/run/tend/machines"), &name);
}

fn rootless() {
    let user = TestUser::new("fault");
    let dir = TempDir::new("fault-rootless");
    let chown = |p: &Path| std::os::unix::fs::chown(p, Some(user.uid), Some(user.gid)).unwrap();
    chown(&dir.0);
    let runtime: PathBuf = dir.path("xdg");
    std::fs::create_dir(&runtime).unwrap();
    chown(&runtime);
    build(&dir.path("rootfs"), Some(&user.name));
    let name = "rootfs";
    let make = || {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", &user.name, "--", "env"])
            .arg(format!("XDG_RUNTIME_DIR={}", runtime.display()))
            .arg(tend())
            .arg("boot")
            .arg(dir.path("rootfs"))
            .args(["--", "/bin/true"]);
        cmd
    };
    walk(&make, &dir.0, &runtime.join("tend/machines"), name);
    drop(dir);
}
