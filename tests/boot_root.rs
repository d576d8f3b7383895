//! `tend boot` of the demo rootfs (built by `rootfs-template/build` in a
//! temp dir), checked from inside with `-- CMD` scripts and from the host:
//! the registry, the exit code, the host's mountinfo before and after.
//! Needs root; the rootless test runs as an unprivileged user it creates.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

/// A demo rootfs in a scratch directory.
struct Demo {
    dir: TempDir,
}

impl Demo {
    fn new(tag: &str) -> Demo {
        let dir = TempDir::new(tag);
        build(&dir.path("rootfs"), None);
        Demo { dir }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path("rootfs")
    }

    /// `tend boot ROOTFS --name NAME ARGS...`.
    fn boot(&self, name: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(tend());
        cmd.arg("boot").arg(self.rootfs()).args(["--name", name]).args(args);
        cmd.env_remove("RUST_BACKTRACE")
            .env_remove("TEND_LOG")
            .env_remove("NOTIFY_SOCKET");
        cmd
    }
}

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
    assert!(
        out.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// Runs to the end within LIMIT: (code, stdout, stderr).
fn run(cmd: &mut Command) -> (i32, String, String) {
    let out_file = tempfile("out");
    let err_file = tempfile("err");
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap());
    let mut child = cmd.spawn().unwrap();
    let code = exit_code_within(&mut child, LIMIT);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let result = (code, read(&out_file), read(&err_file));
    let _ = std::fs::remove_file(out_file);
    let _ = std::fs::remove_file(err_file);
    result
}

fn tempfile(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("tend-boot-{tag}-{}-{n}", std::process::id()))
}

/// A shell script of checks: each `check NAME CMD...` prints `ok NAME` or
/// `FAIL NAME`; the script ends with `exit 7` so the code can be checked.
fn checks(body: &str) -> String {
    format!("check() {{ n=$1; shift; if \"$@\" >/dev/null 2>&1; then echo \"ok $n\"; else echo \"FAIL $n\"; ps -o pid,ppid,comm,args; fi; }}\n{body}\nexit 7\n")
}

fn assert_all_ok(stdout: &str, stderr: &str, names: &[&str]) {
    assert!(!stdout.contains("FAIL"), "failed checks:\n{stdout}\nstderr:\n{stderr}");
    for name in names {
        assert!(
            stdout.contains(&format!("ok {name}\n")),
            "check {name} missing:\n{stdout}\n{stderr}"
        );
    }
}

/// The mount points of a mountinfo text.
fn mount_points(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .collect()
}

const INSIDE: &str = r#"
check pid1-is-tend test "$(cat /proc/1/comm)" = tend
check hostname test "$(hostname)" = box
# Only PID 1, this shell and its children: no host process is visible
# (busybox re-execs its applets through /proc/self/exe: comm "exe").
check only-container-processes test -z "$(ps -o comm | tail -n +2 | grep -v -x -e tend -e sh -e ps -e grep -e tail -e exe)"
check few-processes test "$(ps -o pid | tail -n +2 | wc -l)" -le 6
check one-root test "$(awk '$5 == "/"' /proc/self/mountinfo | wc -l)" = 1
check no-old-root sh -c '! grep -q " /oldroot\| /.pivot" /proc/self/mountinfo'
check dev-null sh -c 'echo x > /dev/null'
check dev-urandom test "$(head -c 16 /dev/urandom | wc -c)" = 16
check dev-zero test "$(head -c 8 /dev/zero | wc -c)" = 8
check pty sh -c 'exec 3<>/dev/ptmx && test -e /dev/pts/0'
check shm sh -c 'echo x > /dev/shm/x'
check proc-sys-read-only sh -c '! echo 1 > /proc/sys/kernel/domainname'
check kcore-masked test ! -s /proc/kcore
check sys-read-only sh -c '! touch /sys/x'
check loopback-up grep -q UP /sys/class/net/lo/operstate -e unknown
check run-writable sh -c 'echo x > /run/x'
check tmp-writable sh -c 'echo x > /tmp/x'
check container-env test "$container" = tend
"#;

#[test]
fn inside_the_container_root() {
    let demo = Demo::new("inside");
    let before = mountinfo();
    let script = checks(INSIDE);
    let mut cmd = demo.boot("inside", &["--hostname", "box", "--", "/bin/sh", "-c", &script]);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 7, "the command's exit code reaches the launcher\n{out}\n{err}");
    assert_all_ok(
        &out,
        &err,
        &[
            "pid1-is-tend",
            "hostname",
            "only-container-processes",
            "one-root",
            "dev-null",
            "dev-urandom",
            "pty",
            "proc-sys-read-only",
            "sys-read-only",
            "loopback-up",
        ],
    );
    assert_eq!(mountinfo(), before, "the host's mounts are unchanged");
}

#[test]
fn mountinfo_names_no_host_mount_point_root() {
    let demo = Demo::new("mountinfo");
    let mut cmd = demo.boot("mountinfo", &["--", "/bin/cat", "/proc/self/mountinfo"]);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    let rootfs = demo.rootfs().display().to_string();
    let points = mount_points(&out);
    assert!(points.contains(&"/proc".to_string()) && points.contains(&"/dev/pts".to_string()));
    for p in &points {
        assert!(!p.starts_with(&rootfs), "host path {p} inside:\n{out}");
        assert!(
            !p.starts_with("/work") && !p.starts_with("/mnt"),
            "host mount {p} inside:\n{out}"
        );
    }
}

#[test]
fn binds_tmpfs_and_read_only_root() {
    let demo = Demo::new("binds");
    let data = demo.dir.path("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("in"), "from host").unwrap();
    let file = demo.dir.path("file");
    std::fs::write(&file, "ro file").unwrap();
    let binds = [
        format!("{}:/data", data.display()),
        format!("{}:/etc/ro-file:ro", file.display()),
        format!("{}:/ro-dir:ro", data.display()),
    ];
    let script = checks(
        r#"
check bind-read test "$(cat /data/in)" = "from host"
check bind-write sh -c 'echo out > /data/out'
check bind-ro-file sh -c '! echo x >> /etc/ro-file'
check bind-ro-file-read test "$(cat /etc/ro-file)" = "ro file"
check bind-ro-dir sh -c '! touch /ro-dir/new'
check root-read-only sh -c '! touch /new'
check tmpfs sh -c 'echo x > /var/cache/x'
check run-still-writable sh -c 'echo x > /run/x'
"#,
    );
    let mut args = vec!["--read-only", "--tmpfs", "/var/cache"];
    for b in &binds {
        args.extend(["--bind", b.as_str()]);
    }
    args.extend(["--", "/bin/sh", "-c", &script]);
    let (code, out, err) = run(&mut demo.boot("binds", &args));
    assert_eq!(code, 7, "{out}\n{err}");
    assert_all_ok(
        &out,
        &err,
        &[
            "bind-read",
            "bind-write",
            "bind-ro-file",
            "bind-ro-dir",
            "root-read-only",
            "tmpfs",
            "run-still-writable",
        ],
    );
    assert_eq!(std::fs::read_to_string(data.join("out")).unwrap(), "out\n");
    assert!(!demo.rootfs().join("new").exists());
}

#[test]
fn a_destination_through_a_rootfs_symlink_stays_inside_the_rootfs_root() {
    // The rootfs's /mnt points at a host path, absolute: inside the
    // container that path is the rootfs's own, and so is the mount point
    // tend makes for a bind below it; the host's directory gets nothing.
    let demo = Demo::new("bind-link");
    let data = demo.dir.path("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("in"), "from host").unwrap();
    let victim = demo.dir.path("victim");
    std::fs::create_dir(&victim).unwrap();
    let _ = std::fs::remove_dir(demo.rootfs().join("mnt"));
    std::os::unix::fs::symlink(&victim, demo.rootfs().join("mnt")).unwrap();
    let bind = format!("{}:/mnt/newdir", data.display());
    let script = checks(
        r#"
check bind-through-link test "$(cat /mnt/newdir/in)" = "from host"
"#,
    );
    let (code, out, err) = run(&mut demo.boot("bind-link", &["--bind", &bind, "--", "/bin/sh", "-c", &script]));
    assert_eq!(code, 7, "{out}\n{err}");
    assert_all_ok(&out, &err, &["bind-through-link"]);
    // (Inside, it was made in the container's /tmp, a tmpfs of its own.)
    assert!(!victim.join("newdir").exists(), "made on the host, through the link");
    // A destination that is the container's / is refused, in one line.
    let (code, _, err) = run(&mut demo.boot("bind-link", &["--tmpfs", "/", "--", "/bin/true"]));
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");
    assert!(err.contains("tmpfs / would cover the container's /"), "{err}");
}

#[test]
fn a_pid_1_the_oom_killer_ends_is_said_in_one_line_root() {
    // A bound too small for PID 1 itself: the machine ends with 137, and
    // the launcher says why rather than nothing.
    let demo = Demo::new("oom");
    let (code, out, err) = run(&mut demo.boot("oom", &["--memory", "1", "--", "/bin/true"]));
    assert_eq!(code, 137, "{out}\n{err}");
    assert!(
        err.contains("PID 1 was killed, after the kernel's OOM killer killed") && err.contains("(--memory 1)"),
        "{err}"
    );
}

#[test]
fn units_run_beside_the_command_root() {
    let demo = Demo::new("units");
    let units = demo.rootfs().join("etc/tend/units");
    let script = checks(
        r#"
for i in $(seq 100); do wget -qO- http://127.0.0.1/ >/dev/null 2>&1 && break; sleep 0.05; done
check httpd-serves sh -c 'wget -qO- http://127.0.0.1/ | grep -q "hello from demo"'
check syslogd-socket test -S /dev/log
check crond-runs sh -c 'ps | grep -q "[c]rond -f"' 
"#,
    );
    let args = ["--units", units.to_str().unwrap(), "--", "/bin/sh", "-c", &script];
    let (code, out, err) = run(&mut demo.boot("units", &args));
    assert_eq!(code, 7, "{out}\n{err}");
    assert_all_ok(&out, &err, &["httpd-serves", "syslogd-socket", "crond-runs"]);
}

/// The registry entry of `name` once PID 1 is known: (PID 1's host pid, launcher pid).
fn await_entry(name: &str) -> (u32, u32) {
    let path = PathBuf::from(format!("/run/tend/machines/{name}.json"));
    await_some("the registry entry", LIMIT, || {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
        let pid = v["pid"].as_u64()? as u32;
        // An entry whose PID 1 is gone is a killed run's leftover, not ours.
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        (pid > 0 && alive).then_some((pid, v["launcher"].as_u64()? as u32))
    })
}

#[test]
fn default_units_then_sigterm_leaves_nothing_root() {
    let demo = Demo::new("sigterm");
    let before = mountinfo();
    let mut child = demo
        .boot("sigterm", &[])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (pid1, _) = await_entry("sigterm");
    // From the host, through PID 1's root: prepare ran, httpd got the page.
    let page = PathBuf::from(format!("/proc/{pid1}/root/run/www/index.html"));
    await_true("the page prepared", LIMIT, || page.exists());
    await_true("three services under PID 1", LIMIT, || children(pid1).len() >= 3);
    let list = output(Command::new(tend()).arg("list"));
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("sigterm") && listed.contains(&pid1.to_string()),
        "{listed}"
    );
    send(child.id(), libc::SIGTERM);
    assert_eq!(exit_code_within(&mut child, LIMIT), 0, "a graceful shutdown exits 0");
    assert!(!Path::new(&format!("/proc/{pid1}")).exists(), "PID 1 is gone");
    assert!(
        !Path::new("/run/tend/machines/sigterm.json").exists(),
        "the registry entry is gone"
    );
    assert_eq!(mountinfo(), before);
}

#[test]
fn detach_returns_and_sigint_stops_root() {
    let demo = Demo::new("detach");
    let (code, _, err) = run(&mut demo.boot("detach", &["--detach", "--", "/bin/sleep", "60"]));
    assert_eq!(code, 0, "{err}");
    let (pid1, launcher) = await_entry("detach");
    send(launcher, libc::SIGINT);
    await_true("PID 1 to end", LIMIT, || !Path::new(&format!("/proc/{pid1}")).exists());
    await_true("the entry to go", LIMIT, || {
        !Path::new("/run/tend/machines/detach.json").exists()
    });
}

/// One line on stderr containing `text`, exit 1, nothing mounted or registered.
fn assert_fails(cmd: &mut Command, name: &str, text: &str) {
    let before = mountinfo();
    let (code, out, err) = run(cmd);
    assert_eq!(code, 1, "{out}\n{err}");
    // Warnings about the boot (a rootfs reachable by other host users) come
    // once every option has been checked: before a failed setup, not
    // before a bad option (tests/userns_root.rs and net_root.rs see only
    // the error there).
    let err: String = err
        .lines()
        .filter(|l| !l.starts_with("tend: warning: "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("tend: ") && err.contains(text),
        "{err:?} should contain {text:?}"
    );
    assert_eq!(mountinfo(), before);
    assert!(!Path::new(&format!("/run/tend/machines/{name}.json")).exists());
}

#[test]
fn bad_input_and_failed_setup_root() {
    let demo = Demo::new("bad");
    let missing = demo.dir.path("missing");
    let mut cmd = Command::new(tend());
    cmd.args(["boot", missing.to_str().unwrap()]);
    assert_fails(
        &mut cmd,
        "missing",
        &format!("rootfs {} does not exist", missing.display()),
    );

    let file = demo.rootfs().join("etc/hostname");
    let mut cmd = Command::new(tend());
    cmd.arg("boot").arg(&file);
    assert_fails(&mut cmd, "hostname", "is not a directory");

    let mut cmd = Command::new(tend());
    cmd.args(["boot", "/", "--name", "host"]);
    assert_fails(&mut cmd, "host", "rootfs / is the host's own root");

    let nope = demo.dir.path("nope");
    let bind = format!("{}:/x", nope.display());
    assert_fails(
        &mut demo.boot("badbind", &["--bind", &bind]),
        "badbind",
        &format!("bind source {} does not exist", nope.display()),
    );

    // A rootfs with the units but none of their programs: found by PID 1
    // after pivot_root, reported as one error naming the units' directory.
    let bare = demo.dir.path("bare");
    std::fs::create_dir_all(bare.join("etc")).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(demo.rootfs().join("etc/tend"))
        .arg(bare.join("etc"))
        .status()
        .unwrap();
    assert!(copied.success());
    let mut cmd = Command::new(tend());
    cmd.arg("boot").arg(&bare).args(["--name", "bare"]);
    assert_fails(&mut cmd, "bare", "cannot load the units of /etc/tend/units: ");
    assert_fails(
        &mut demo.boot("nocmd", &["--", "/bin/nothere"]),
        "nocmd",
        "cannot run the command: command \"/bin/nothere\" does not exist",
    );
}

#[test]
fn a_name_in_use_is_refused_root() {
    let demo = Demo::new("inuse");
    // Killed on drop, so a failed assertion leaves no machine holding the name.
    let mut first = KillOnDrop(
        demo.boot("inuse", &["--", "/bin/sleep", "60"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (pid1, _) = await_entry("inuse");
    // The TERM below is for the running sleep, not a PID 1 still starting it.
    await_child(pid1);
    let (code, _, err) = run(&mut demo.boot("inuse", &["--", "/bin/true"]));
    assert_eq!(code, 1);
    assert!(err.contains("machine name inuse is already in use"), "{err}");
    send(first.0.id(), libc::SIGTERM);
    assert_eq!(exit_code_within(&mut first.0, LIMIT), 143, "sleep killed by the TERM");
    assert!(!Path::new(&format!("/proc/{pid1}")).exists());
}

/// What a rootless test needs: an unprivileged user of its own (removed
/// with the rest when dropped), a scratch dir it owns with its runtime dir
/// (for `XDG_RUNTIME_DIR`) and a demo rootfs it built.
struct Rootless {
    // Fields drop in order: the user goes after its files.
    dir: TempDir,
    user: TestUser,
}

impl Rootless {
    fn new(tag: &str) -> Rootless {
        let user = TestUser::new("rl");
        let dir = TempDir::new(tag);
        let chown = |p: &Path| std::os::unix::fs::chown(p, Some(user.uid), Some(user.gid)).unwrap();
        chown(&dir.0);
        std::fs::create_dir(dir.path("xdg")).unwrap();
        chown(&dir.path("xdg"));
        build(&dir.path("rootfs"), Some(&user.name));
        Rootless { dir, user }
    }

    fn runtime(&self) -> PathBuf {
        self.dir.path("xdg")
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path("rootfs")
    }
}

#[test]
fn rootless_boot_as_an_unprivileged_user_root() {
    let rl = Rootless::new("rootless");
    let (runtime, rootfs, uid) = (rl.runtime(), rl.rootfs(), rl.user.uid);
    let script = checks(
        r#"
check root-inside test "$(id -u)" = 0
check mapped sh -c "grep -q '^ *0 *$HOST_UID ' /proc/self/uid_map"
check pid1-is-tend test "$(cat /proc/1/comm)" = tend
check hostname test "$(hostname)" = demo
check dev-null sh -c 'echo x > /dev/null'
check dev-urandom test "$(head -c 16 /dev/urandom | wc -c)" = 16
check pty sh -c 'exec 3<>/dev/ptmx && test -e /dev/pts/0'
check proc-sys-read-only sh -c '! echo 1 > /proc/sys/kernel/domainname'
"#,
    )
    .replace("$HOST_UID", &uid.to_string());
    let before = mountinfo();
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", &rl.user.name, "--", "env"])
        .arg(format!("XDG_RUNTIME_DIR={}", runtime.display()))
        .arg(tend())
        .arg("boot")
        .arg(&rootfs)
        .args(["--", "/bin/sh", "-c", &script]);
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 7, "{out}\n{err}");
    assert_all_ok(
        &out,
        &err,
        &[
            "root-inside",
            "mapped",
            "pid1-is-tend",
            "hostname",
            "dev-null",
            "dev-urandom",
            "pty",
            "proc-sys-read-only",
        ],
    );
    assert_eq!(mountinfo(), before);
    assert!(!runtime.join("tend/machines/rootfs.json").exists());
}

/// `tend ctl -M NAME ARGS...` from the host, stdin given.
fn ctl_machine(name: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
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
    let code = exit_code_within(&mut child, LIMIT);
    let out = child.wait_with_output().unwrap();
    (
        code,
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn controlled_from_the_host_with_ctl_machine_root() {
    let demo = Demo::new("ctlm");
    let before = mountinfo();
    let child = demo
        .boot("ctlm", &[])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    await_entry("ctlm");
    let (code, out, err) = ctl_machine("ctlm", &["wait", "httpd", "syslogd", "--for", "ready"], "");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = ctl_machine("ctlm", &["status"], "");
    assert_eq!(code, 0, "{err}");
    for service in ["crond", "httpd", "prepare", "syslogd"] {
        assert!(out.lines().any(|l| l.starts_with(service)), "{out}");
    }
    // exec runs inside (its hostname, its processes), with our pipes.
    let (code, out, err) = ctl_machine(
        "ctlm",
        &["exec", "--", "sh", "-c", "tr a-z A-Z; hostname; exit 6"],
        "shout\n",
    );
    assert_eq!(code, 6, "{err}");
    assert_eq!(out, "SHOUT\ndemo\n", "the rootfs's /etc/hostname; {err}");
    let (code, out, err) = ctl_machine("ctlm", &["logs", "prepare"], "");
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = ctl_machine("ctlm", &["shutdown"], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(exit_code_within(&mut child.0, LIMIT), 0);
    assert!(
        !Path::new("/run/tend/machines/ctlm.sock").exists(),
        "the socket is gone"
    );
    let (code, _, err) = ctl_machine("ctlm", &["status"], "");
    assert_ne!(code, 0);
    assert!(err.contains("/run/tend/machines/ctlm.sock"), "{err}");
    assert_eq!(mountinfo(), before);
}

#[test]
fn rootless_machine_is_controlled_by_its_user_root() {
    let rl = Rootless::new("rootless-ctl");
    let (runtime, rootfs) = (rl.runtime(), rl.rootfs());
    // The user's own tend, with the user's runtime dir.
    let as_user = |args: &[&str]| {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", &rl.user.name, "--", "env"])
            .arg(format!("XDG_RUNTIME_DIR={}", runtime.display()))
            .arg(tend())
            .args(args);
        run(&mut cmd)
    };
    let rootfs_arg = rootfs.to_str().unwrap();
    let (code, out, err) = as_user(&[
        "boot",
        rootfs_arg,
        "--name",
        "mine",
        "--detach",
        "--",
        "/bin/sleep",
        "60",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        runtime.join("tend/machines/mine.sock").exists(),
        "the socket is under XDG_RUNTIME_DIR"
    );
    let (code, out, err) = as_user(&["ctl", "-M", "mine", "exec", "--", "id", "-u"]);
    assert_eq!((code, out.trim()), (0, "0"), "root inside, for its user outside; {err}");
    let (code, _, err) = as_user(&["ctl", "-M", "mine", "shutdown"]);
    assert_eq!(code, 0, "{err}");
    await_true("the socket to go", LIMIT, || {
        !runtime.join("tend/machines/mine.sock").exists()
    });
}

#[test]
fn the_rootless_tests_user_goes_with_them_root() {
    let entries = |name: &str| -> usize {
        ["/etc/passwd", "/etc/subuid", "/etc/subgid"]
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap_or_default())
            .map(|t| t.lines().filter(|l| l.starts_with(&format!("{name}:"))).count())
            .sum()
    };
    let user = TestUser::new("rl");
    let name = user.name.clone();
    assert_eq!(entries(&name), 3, "a user with subordinate uid and gid ranges");
    drop(user);
    assert_eq!(entries(&name), 0, "no user and no ranges left");
    assert!(!Path::new("/home").join(&name).exists());
}
