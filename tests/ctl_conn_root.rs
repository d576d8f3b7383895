//! The control socket at its limits, against `tend init` as PID 1 of a
//! fresh PID namespace: replies of thousands of services, clients that
//! hang up mid-request or hold every descriptor, `exec -t` whose shell
//! leaves a job behind, and a tend that is not root. Needs root.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(20);

struct Tend {
    dir: TempDir,
    child: Option<Child>,
}

impl Tend {
    fn start(tag: &str, units: &[(&str, &str)]) -> Tend {
        Tend::start_with(tag, units, &[])
    }

    /// Writes the units and starts tend (behind `wrapper`, e.g. prlimit);
    /// waits until its socket answers.
    fn start_with(tag: &str, units: &[(&str, &str)], wrapper: &[&str]) -> Tend {
        let dir = TempDir::new(tag);
        std::fs::create_dir(dir.path("units")).unwrap();
        for (name, toml) in units {
            let toml = toml.replace("@DIR", &dir.0.display().to_string());
            std::fs::write(dir.path("units").join(format!("{name}.toml")), toml).unwrap();
        }
        let pid1 = tend_as_pid1(&[
            "init",
            "--units",
            dir.path("units").to_str().unwrap(),
            "--socket",
            dir.path("run/ctl.sock").to_str().unwrap(),
        ]);
        let mut cmd = match wrapper.split_first() {
            None => pid1,
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(pid1.get_program()).args(pid1.get_args());
                cmd.env_remove("RUST_BACKTRACE").env_remove("TEND_LOG");
                cmd
            }
        };
        let log = std::fs::File::create(dir.path("tend.log")).unwrap();
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let tend = Tend {
            dir,
            child: Some(cmd.spawn().unwrap()),
        };
        await_true("the control socket", LIMIT, || tend.ctl(&["ping"]).status.success());
        tend
    }

    fn socket(&self) -> PathBuf {
        self.dir.path("run/ctl.sock")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(tend());
        cmd.arg("ctl").arg("--socket").arg(self.socket()).args(args);
        cmd
    }

    fn ctl(&self, args: &[&str]) -> Output {
        output(&mut self.cmd(args))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("tend.log")).unwrap_or_default()
    }

    /// tend's host pid (the child of unshare, itself maybe under a wrapper).
    fn pid1(&self) -> u32 {
        find_tend(self.child.as_ref().unwrap().id())
    }
}

/// The first process running tend at or below `pid`.
fn find_tend(pid: u32) -> u32 {
    await_some("tend's process", LIMIT, || {
        let mut pid = pid;
        loop {
            // By name: a copy of tend may run it (see `user_bin`).
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            if comm.trim_end() == "tend" {
                return Some(pid);
            }
            pid = *children(pid).first()?;
        }
    })
}

impl Drop for Tend {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // After the name: state (not a number), ppid, ..., utime is field 14.
    fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0)
}

fn ticks_per_second() -> u64 {
    // SAFETY: sysconf takes a constant.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).unwrap_or(100)
}

/// Issue 16, item 5: `status` of thousands of services was refused by the
/// client ("frame longer than 65536 bytes"). 5000 `sleep` units, one in ten
/// enabled (starting 5000 takes minutes in a debug build), all listed.
#[test]
fn status_of_5000_services_root() {
    const N: usize = 5000;
    let names: Vec<String> = (0..N).map(|i| format!("service-{i:04}")).collect();
    let unit = |i: usize| match i % 10 {
        0 => "command = \"sleep 1000\"\n",
        _ => "command = \"sleep 1000\"\nenabled = false\n",
    };
    let units: Vec<(&str, &str)> = names.iter().enumerate().map(|(i, n)| (n.as_str(), unit(i))).collect();
    let t = Tend::start("many", &units);
    let up = |out: &str| {
        out.lines()
            .filter(|l| l.contains(" ready ") || l.contains(" running "))
            .count()
    };
    let status = await_some("500 services up", Duration::from_secs(120), || {
        let out = t.ctl(&["status"]);
        assert!(out.status.success(), "{}{}", text(&out.stderr), t.log());
        let out = text(&out.stdout);
        (up(&out) == N / 10).then_some(out)
    });
    assert_eq!(status.lines().count(), N);
    let out = t.ctl(&["--json", "status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.len() > 4 * 65536, "a reply of {} bytes", out.stdout.len());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["services"].as_array().unwrap().len(), N);
}

/// Issue 16, item 14: a client that sent part of a request and hung up
/// kept its socket open in PID 1 for good.
#[test]
fn connections_that_end_mid_frame_are_closed_root() {
    let t = Tend::start("midframe", &[]);
    let pid = t.pid1();
    await_idle(pid);
    let baseline = fd_count(pid);
    for i in 0..50 {
        let mut c = UnixStream::connect(t.socket()).unwrap();
        let partial: &[u8] = match i % 3 {
            0 => b"{\"v\":1,\"op\":\"sta",
            1 => b"{",
            _ => b"{\"v\":1,\"op\":\"ping\"}\n{\"v\":1",
        };
        c.write_all(partial).unwrap();
    }
    await_true("PID 1's descriptors back to where they were", LIMIT, || {
        fd_count(pid) <= baseline
    });

    // A client that half-closes after a request and a partial one still
    // gets its reply, then the end of the connection.
    let mut c = UnixStream::connect(t.socket()).unwrap();
    c.write_all(b"{\"v\":1,\"op\":\"ping\"}\n{\"v\":1,\"op\"").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).expect("the connection to end");
    assert_eq!(reply, "{\"ok\":true,\"kind\":\"pong\"}\n");
    await_true("PID 1's descriptors back to where they were", LIMIT, || {
        fd_count(pid) <= baseline
    });
}

/// Issue 16, item 15: with every descriptor held by clients, a crashing
/// service was never restarted ("cannot create its cgroup: Too many open
/// files").
#[test]
fn descriptor_exhaustion_leaves_supervision_its_share_root() {
    let crash = "command = \"date +%s%N >> @DIR/starts; exit 1\"\nrestart = \"always\"\nrestart-delay = \"100ms\"\nrestart-delay-max = \"100ms\"\nstart-limit-burst = 100000\n";
    let t = Tend::start_with("nofile", &[("crash", crash)], &["prlimit", "--nofile=64", "--"]);
    let pid = t.pid1();
    let starts = || {
        std::fs::read_to_string(t.dir.path("starts"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let clients: Vec<UnixStream> = (0..100).map(|_| UnixStream::connect(t.socket()).unwrap()).collect();
    // The last ones are refused with a line; PID 1 holds at most half its limit.
    let mut last = clients.last().unwrap().try_clone().unwrap();
    last.set_read_timeout(Some(LIMIT)).unwrap();
    let mut refusal = String::new();
    let _ = last.read_to_string(&mut refusal);
    assert!(refusal.contains("too many connections"), "{refusal:?}\n{}", t.log());

    let (ticks, at) = (cpu_ticks(pid), Instant::now());
    let before = starts();
    await_true("ten restarts while clients hold their connections", LIMIT, || {
        starts() >= before + 10
    });
    let used = cpu_ticks(pid) - ticks;
    let elapsed = at.elapsed().as_millis() as u64 * ticks_per_second() / 1000;
    // Spinning would take every tick; ten restarts take few.
    assert!(
        used * 2 <= elapsed + ticks_per_second() / 10,
        "PID 1 used {used} ticks in {elapsed}\n{}",
        t.log()
    );
    let warnings = t.log().matches("refusing new control connections").count();
    assert_eq!(warnings, 1, "{}", t.log());
    drop(clients);
    await_true("the socket answers again", LIMIT, || t.ctl(&["ping"]).status.success());
}

/// Issue 16, item 9: `exec -t` spun at 100% CPU and did not return while
/// a background job held the terminal after the shell exited; and spun
/// while the command had closed its terminal.
#[test]
fn exec_t_returns_when_the_command_exits_root() {
    let t = Tend::start("ttyexit", &[]);
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = t
        .cmd(&["exec", "-t", "--", "sh", "-i"])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    master.write_all(b"sleep 1000 & exit 3\n").unwrap();
    // Drain the echo meanwhile, so the client never blocks writing it.
    let mut reader = master.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while reader.read(&mut buf).is_ok_and(|n| n > 0) {}
    });
    assert_eq!(exit_code_within(&mut child, LIMIT), 3, "{}", t.log());

    // A command that closed its terminal: the relay waits, not spins.
    let (a, b) = (t.dir.path("a"), t.dir.path("b"));
    let script = format!(
        "exec </dev/null >/dev/null 2>&1; touch {a}; sleep 1; touch {b}; sleep 0.5; exit 4",
        a = a.display(),
        b = b.display()
    );
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = t
        .cmd(&["exec", "-t", "--", "sh", "-c", &script])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    await_true("the command to close its terminal", LIMIT, || a.exists());
    let ticks = cpu_ticks(child.id());
    await_true("the command's second", LIMIT, || b.exists());
    let used = cpu_ticks(child.id()) - ticks;
    assert!(
        used < ticks_per_second() / 2,
        "the client used {used} ticks in a second"
    );
    assert_eq!(exit_code_within(&mut child, LIMIT), 4);
    drop(master);
}

const USER: &str = "1000";

/// `tend init` as uid 1000 (no right to /run/tend), PID 1 of a fresh PID
/// namespace, with `env` set; with `private_tmp`, in a mount namespace
/// whose /tmp is `dir/tmp` (the test's own directory still reachable at
/// its path), so that /tmp/tend-1000 is the test's.
fn user_tend(dir: &TempDir, env: &[(&str, PathBuf)], private_tmp: bool) -> Child {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir.path("units")).unwrap();
    // A copy in the test's directory, which stays reachable at its path when
    // /tmp is replaced (the build's own tend may live below /tmp).
    let bin = user_bin(dir);
    // Its own /run, holding a socket a killed root tend left behind: a
    // user must not be sent there (nor to the host's /run/tend), and its
    // own network namespace, so that no host socket is listed as listening.
    let mut script = String::from(STALE_ROOT_SOCKET);
    if private_tmp {
        let base = dir.0.file_name().unwrap().to_str().unwrap();
        let d = dir.0.display();
        std::fs::create_dir_all(dir.path("tmp").join(base)).unwrap();
        std::fs::set_permissions(dir.path("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        script = format!("mount --bind {d} {d}/tmp/{base} && mount --rbind {d}/tmp /tmp && ");
    }
    script.push_str(&format!(
        "exec setpriv --reuid {USER} --regid {USER} --clear-groups -- {} init --units {}",
        bin.display(),
        dir.path("units").display()
    ));
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--net",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("TEND_LOG")
        .env_remove("TEND_SOCKET")
        .env_remove("XDG_RUNTIME_DIR")
        .envs(env.iter().map(|(k, v)| (k, v)));
    let log = std::fs::File::create(dir.path("tend.log")).unwrap();
    cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
    cmd.spawn().unwrap()
}

/// A private /run whose `tend/ctl.sock` is bound by root and listened on by
/// no one, as a killed root tend leaves it.
const STALE_ROOT_SOCKET: &str = "mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/tend && \
    python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind(\"/run/tend/ctl.sock\")' && ";

/// tend and its launcher, both killed on drop: setpriv's change of uid
/// clears the parent-death signal that `unshare --kill-child` set.
struct UserTend {
    pid: u32,
    child: Child,
}

impl Drop for UserTend {
    fn drop(&mut self) {
        // SAFETY: kill takes plain integers.
        unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tend ctl ARGS` as uid 1000 with `env`, in the mount namespace of `pid`.
fn user_ctl(dir: &TempDir, pid: u32, env: &[(&str, PathBuf)], args: &[&str]) -> Output {
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &pid.to_string(), "-m", "-n", "--"])
        .args(["setpriv", "--reuid", USER, "--regid", USER, "--clear-groups", "--"])
        .arg(user_bin(dir))
        .arg("ctl")
        .args(args)
        .env_remove("TEND_SOCKET")
        .env_remove("XDG_RUNTIME_DIR")
        .envs(env.iter().map(|(k, v)| (k, v)));
    output(&mut cmd)
}

/// tend copied into the test's directory (once), for [`user_tend`] and
/// [`user_ctl`].
fn user_bin(dir: &TempDir) -> PathBuf {
    let bin = dir.path("tend");
    if !bin.exists() {
        std::fs::copy(tend(), &bin).unwrap();
    }
    bin
}

/// A directory of the test's, owned by uid 1000, mode 0700.
fn user_dir(dir: &TempDir, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path(name);
    std::fs::create_dir_all(&path).unwrap();
    std::os::unix::fs::chown(&path, Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    path
}

/// The environment of both sides, and where the socket must be.
type Setup = fn(&TempDir) -> (Vec<(&'static str, PathBuf)>, PathBuf);

/// Issue 16, item 10: as a non-root user tend could not create
/// /run/tend/ctl.sock and served no socket. `TEND_SOCKET` names it for
/// both sides; without it both fall back to the same place of the user's.
#[test]
fn non_root_tend_serves_a_socket_its_user_finds_root() {
    let cases: [(&str, Setup, bool); 3] = [
        (
            "env",
            |dir| {
                let socket = user_dir(dir, "user").join("ctl.sock");
                (vec![("TEND_SOCKET", socket.clone())], socket)
            },
            false,
        ),
        (
            "xdg",
            |dir| {
                let xdg = user_dir(dir, "xdg");
                (vec![("XDG_RUNTIME_DIR", xdg.clone())], xdg.join("tend/ctl.sock"))
            },
            false,
        ),
        ("tmp", |dir| (Vec::new(), dir.path("tmp/tend-1000/ctl.sock")), true),
    ];
    for (tag, setup, private_tmp) in cases {
        let dir = TempDir::new(&format!("user-{tag}"));
        let (env, socket) = setup(&dir);
        let child = user_tend(&dir, &env, private_tmp);
        let pid = find_tend(child.id());
        let tend = UserTend { pid, child };
        let log = || std::fs::read_to_string(dir.path("tend.log")).unwrap_or_default();
        await_true(&format!("{tag}: tend answering its user"), LIMIT, || {
            user_ctl(&dir, pid, &env, &["ping"]).status.success()
        });
        assert!(socket.exists(), "{tag}: no socket at {}\n{}", socket.display(), log());
        let out = user_ctl(&dir, pid, &env, &["status"]);
        assert!(out.status.success(), "{tag}: {}{}", text(&out.stderr), log());
        if private_tmp {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(dir.path("tmp/tend-1000")).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o777), (1000, 0o700));
        }
        drop(tend);
    }
}

/// Issue 15: the spare descriptor itself. PID 1's limit is lowered, once
/// it runs, to a few above what it holds: `accept` fails with EMFILE long
/// before the connection cap (half the limit). Every client still gets an
/// answer (the spare is closed to accept it and refuse it), PID 1 goes back
/// to sleep instead of spinning on the backlog, says so once, and serves
/// again when the clients go.
#[test]
fn accept_at_emfile_refuses_through_the_spare_root() {
    let crash = "command = \"date +%s%N >> @DIR/starts; exit 1\"\nrestart = \"always\"\nrestart-delay = \"50ms\"\nrestart-delay-max = \"50ms\"\nstart-limit-burst = 100000\n";
    let t = Tend::start("emfile", &[("crash", crash)]);
    let pid = t.pid1();
    await_true("the first start", LIMIT, || t.dir.path("starts").exists());
    // Room for three more descriptors: the cap (half the limit) is far.
    let limit = fd_count(pid) + 3;
    let out = output(
        Command::new("prlimit")
            .arg(format!("--pid={pid}"))
            .arg(format!("--nofile={limit}:")),
    );
    assert!(out.status.success(), "prlimit: {}", text(&out.stderr));
    let mut clients: Vec<UnixStream> = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        let mut client = UnixStream::connect(t.socket()).unwrap();
        // A refused client is answered at once and closed; an admitted one
        // hears nothing until it asks (the short wait ends its read).
        let mut line = String::new();
        let mut byte = [0u8; 1];
        client.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        while let Ok(1) = client.read(&mut byte) {
            line.push(byte[0] as char);
        }
        if line.contains("out of file descriptors") {
            refused += 1;
        }
        clients.push(client);
    }
    assert!(
        refused >= 30,
        "only {refused} of 40 refused for want of fds\n{}",
        t.log()
    );
    // Not spinning: asleep in epoll_wait between the crash's restarts.
    await_idle(pid);
    let warnings = t.log().matches("tend is out of file descriptors").count();
    assert_eq!(warnings, 1, "{}", t.log());
    drop(clients);
    let out = output(
        Command::new("prlimit")
            .arg(format!("--pid={pid}"))
            .arg("--nofile=1024:"),
    );
    assert!(out.status.success());
    await_true("the socket answers again", LIMIT, || t.ctl(&["ping"]).status.success());
    let before = std::fs::read_to_string(t.dir.path("starts")).unwrap().lines().count();
    await_true("supervision goes on", LIMIT, || {
        std::fs::read_to_string(t.dir.path("starts")).unwrap().lines().count() > before + 3
    });
}
