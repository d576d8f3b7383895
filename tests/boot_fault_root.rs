//! Every step of a real `tend boot` failed on purpose (`TEND_TEST_FAULT`,
//! see `src/sys/fault.rs`), one at a time: each failure is one error line
//! naming the step, exit 1, and the host left as it was: its mounts under
//! the test's paths, the registry, the sockets, the processes and the
//! cgroups. The steps are counted by the boot itself, so steps added later
//! are walked too. Needs root; the rootless walk runs as a user it creates.
//! The network walks (`--net veth --publish`, `--net bridge`) boot in a
//! network namespace the test makes, and check it too: its links,
//! addresses, routes, nftables ruleset and forwarding as before.

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
    /// Cgroups below the boots' own, and processes in it; the machine's
    /// `tend-boot-NAME-*` in the v1 hierarchies (made where the test
    /// runs there).
    cgroups: Vec<String>,
    /// The test's network namespace, when the boots run in one.
    network: Vec<String>,
}

impl HostState {
    fn now(dir: &Path, registry: &Path, name: &str, cgroup: &Cgroup, network: &dyn Fn() -> Vec<String>) -> HostState {
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
        let processes = processes_naming(&dir_text);
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
            .chain(machine_cgroups(&["memory", "pids", "cpu", "devices"], name))
            .collect();
        HostState {
            mounts,
            registry,
            processes,
            cgroups,
            network: network(),
        }
    }

    /// The state once the processes a boot leaves to end on their own have
    /// ended (the child that sits out the kernel's wait after deleting a
    /// veth pair), or after [`LIMIT`]; the rest is taken at once.
    fn settled(
        before: &HostState,
        dir: &Path,
        registry: &Path,
        name: &str,
        cgroup: &Cgroup,
        network: &dyn Fn() -> Vec<String>,
    ) -> HostState {
        let now = HostState::now(dir, registry, name, cgroup, network);
        let deadline = std::time::Instant::now() + LIMIT;
        let mut last = HostState::now(dir, registry, name, cgroup, &Vec::new);
        while (last.processes != before.processes || last.cgroups != before.cgroups)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
            last = HostState::now(dir, registry, name, cgroup, &Vec::new);
        }
        HostState {
            processes: last.processes,
            cgroups: last.cgroups,
            ..now
        }
    }
}

/// Processes but this one whose command line holds `text`: "PID CMDLINE".
fn processes_naming(text: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter(|e| e.file_name().to_string_lossy() != me)
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(text).then(|| format!("{:?} {cmdline}", e.file_name()))
        })
        .collect()
}

/// A cgroup v2 of the test's own that each boot starts in: what its PID 1
/// would make is found below it, with no other test's in the way. Not
/// named `tend-*`: a starting tend sweeps empty ones of those beside it.
struct Cgroup(PathBuf, std::ffi::CString);

impl Cgroup {
    fn new(tag: &str) -> Cgroup {
        let path = cgroup2_mount()
            .expect("a cgroup2 hierarchy")
            .join(format!("boot-fault-test-{tag}-{}", std::process::id()));
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
/// Returns the error lines, one a step.
fn walk(
    make: &dyn Fn() -> Command,
    dir: &Path,
    registry: &Path,
    name: &str,
    network: &dyn Fn() -> Vec<String>,
) -> Vec<String> {
    let cgroup = Cgroup::new(name);
    let before = HostState::now(dir, registry, name, &cgroup, network);
    assert!(before.registry.is_empty(), "{before:?}");
    let mut n = 1;
    let mut errors = Vec::new();
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
        errors.push(lines[0].to_string());
        let after = HostState::settled(&before, dir, registry, name, &cgroup, network);
        assert_eq!(after, before, "step {n} ({err}) left something on the host");
        n += 1;
        assert!(n < 10_000, "the steps never end");
    }
    assert_eq!(
        HostState::settled(&before, dir, registry, name, &cgroup, network),
        before,
        "after the full boot"
    );
    eprintln!("{name}: walked {} steps", n - 1);
    errors
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
                // Its cgroups: the bounds' in v2 and v1, the device program.
                "--memory",
                "64M",
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
    walk(&make, &dir.0, Path::new("/run/tend/machines"), &name, &Vec::new);
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
    walk(&make, &dir.0, Path::new("/run/tend/machines"), &name, &Vec::new);
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
    walk(&make, &dir.0, &runtime.join("tend/machines"), name, &Vec::new);
    drop(dir);
}

/// A network namespace of the test's own, held by a sleeping process: the
/// boots and the checks enter it (`nsenter -n`), the host's is untouched.
struct NetNs(std::process::Child);

impl NetNs {
    fn new() -> NetNs {
        let holder = Command::new("unshare")
            .args(["-n", "sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let netns = NetNs(holder);
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let path = format!("/proc/{}/ns/net", netns.0.id());
        await_true("the test's network namespace", LIMIT, || {
            std::fs::read_link(&path).is_ok_and(|l| l != own)
        });
        let up = output(netns.command("ip").args(["link", "set", "lo", "up"]));
        assert!(up.status.success(), "{up:?}");
        netns
    }

    /// `program` run in the namespace.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.0.id().to_string(), "-n", "--", program]);
        cmd
    }

    /// Its links, IPv4 addresses, routes, nftables ruleset and forwarding,
    /// and the registry's shared file of the namespace (`net-INODE.json`).
    fn state(&self) -> Vec<String> {
        let script = "ip -o link | sed 's/^[0-9]*: //'; ip -o -4 addr | sed 's/^[0-9]*: //'; \
                      ip route; nft list ruleset; cat /proc/sys/net/ipv4/ip_forward";
        let out = output(self.command("sh").args(["-c", script]));
        assert!(out.status.success(), "{out:?}");
        let inode =
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(format!("/proc/{}/ns/net", self.0.id())).unwrap());
        let shared = Path::new("/run/tend/machines").join(format!("net-{inode}.json"));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .chain(shared.exists().then(|| format!("{} exists", shared.display())))
            .collect()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every step of a rootful boot with `--net veth` and published ports
/// (one to 127.0.0.1: the `route_localnet` sysctl), of one with `--net
/// bridge` (which makes the bridge), of one joining a bridge another
/// machine holds, and of a `--privileged` one, each in a network namespace
/// of the test's: the launcher's network steps are counted with the
/// child's.
#[test]
fn every_network_step_fails_cleanly_root() {
    let dir = TempDir::new("fault-net");
    // Out of other users' reach, as a rootfs should be (no warning).
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    build(&dir.path("rootfs"), None);
    for (tag, net) in [
        (
            "veth",
            &[
                "--net",
                "veth",
                "--publish",
                "8080:80",
                "--publish",
                "127.0.0.1:5353:53/udp",
            ][..],
        ),
        ("bridge", &["--net", "bridge"][..]),
        ("shared", &["--net", "bridge", "--publish", "8080:80"][..]),
        // No user namespace: the network is the child's own namespace,
        // not one the launcher holds.
        ("privileged", &["--privileged", "--net", "veth"][..]),
    ] {
        let netns = NetNs::new();
        let empty = netns.state();
        assert!(empty.iter().all(|l| !l.contains("tend")), "{empty:?}");
        // "shared": a machine on the bridge already, which must keep it,
        // its rules and forwarding whichever step of the second fails.
        let resident = (tag == "shared").then(|| Resident::boot(&netns, &dir.path("rootfs")));
        let name = format!("fault-{tag}-{}", std::process::id());
        let make = || {
            let mut cmd = netns.command(&tend().display().to_string());
            cmd.arg("boot")
                .arg(dir.path("rootfs"))
                .args(["--name", &name])
                .args(net)
                .args(["--", "/bin/true"]);
            cmd
        };
        let errors = walk(&make, &dir.0, Path::new("/run/tend/machines"), &name, &|| netns.state());
        // The launcher's steps, in order, before the child's first.
        let mut want = vec![format!("cannot write /run/tend/machines/{name}.net")];
        if tag != "shared" {
            want.extend([
                "cannot write /run/tend/machines/net-".into(),
                "cannot set /proc/sys/net/ipv4/ip_forward".into(),
            ]);
        }
        if tag == "bridge" {
            want.extend([
                "cannot link add tend0 type bridge on the host".into(),
                "cannot addr add 10.231.0.1/16 dev tend0 on the host".into(),
            ]);
        }
        want.extend([
            "cannot link add ve-fault-".into(),
            "cannot route add default via ".into(),
            "cannot write nftables table inet tend".into(),
            "cannot make the mount tree private".into(),
        ]);
        let mut at = errors.iter();
        for line in &want {
            assert!(
                at.any(|e| e.starts_with(&format!("tend: {line}"))),
                "{tag}: no step {line:?} (in order) among {errors:#?}"
            );
        }
        drop(resident);
        assert_eq!(netns.state(), empty, "{tag}: the namespace as it was");
    }
}

/// A machine that stays up on the bridge (`sleep`) until dropped.
struct Resident(std::process::Child, String);

impl Resident {
    fn boot(netns: &NetNs, rootfs: &Path) -> Resident {
        let name = format!("fault-resident-{}", std::process::id());
        let child = netns
            .command(&tend().display().to_string())
            .arg("boot")
            .arg(rootfs)
            .args(["--name", &name, "--net", "bridge", "--", "sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let entry = Path::new("/run/tend/machines").join(format!("{name}.json"));
        await_true("the resident machine", LIMIT, || entry.exists());
        // The bridge's carrier follows its port's a moment later (the
        // kernel's link watch): the state to compare is the one after.
        await_true("the bridge up", LIMIT, || {
            let out = output(netns.command("ip").args(["-o", "link", "show", "tend0"]));
            String::from_utf8_lossy(&out.stdout).contains("state UP")
        });
        Resident(child, name)
    }
}

impl Drop for Resident {
    fn drop(&mut self) {
        send(self.0.id(), libc::SIGTERM);
        let code = exit_code_within(&mut self.0, LIMIT);
        assert!(code == 0 || code == 143, "{}: {code}", self.1);
        // The launcher's lingering child (it deletes the pair and the
        // bridge) outlives it a little: gone before the next walk looks.
        let named = format!("--name {} ", self.1);
        await_true("the resident's lingering child gone", LIMIT, || {
            processes_naming(&named).is_empty()
        });
    }
}
