//! packaging/tend-boot@.service's contract with systemd, played by the test
//! (needs root): its ExecStart, taken from the unit file, boots the demo
//! rootfs; READY=1 reaches the service's `$NOTIFY_SOCKET` once the units are
//! up, sent by the container's PID 1 and not by the launcher systemd
//! started (hence `NotifyAccess=all`); and TERM to the launcher alone
//! (`KillMode=mixed`) is tend's graceful shutdown: the units' stop handlers
//! run and the launcher exits 0.

use std::io::IoSliceMut;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, UnixAddr};

mod common;

use common::{await_some, exit_code_within, send, TempDir};

/// A unit that records its stop in the rootfs (seen from the host).
const MARKER: &str = r#"
command = ["sh", "-c", "trap 'echo stopped > /root/stopped; exit 0' TERM; while :; do sleep 1; done"]
"#;

/// The unit's ExecStart as systemd would run it for instance `name`, with
/// the default environment (no .conf): ROOTFS=/var/lib/machines/%i is
/// replaced by `rootfs`, /usr/bin/tend by the test's tend.
fn exec_start(name: &str, rootfs: &Path) -> Vec<String> {
    let unit =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/tend-boot@.service")).unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart=");
    line.split_whitespace()
        .filter(|w| *w != "$TEND_BOOT_ARGS")
        .map(|w| match w {
            "/usr/bin/tend" => env!("CARGO_BIN_EXE_tend").to_string(),
            "${ROOTFS}" => rootfs.display().to_string(),
            w => w.replace("%i", name),
        })
        .collect()
}

/// The pid that sent the next datagram holding READY=1 (SCM_CREDENTIALS).
fn ready_sender(socket: &UnixDatagram) -> Option<i32> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
    let msg = recvmsg::<UnixAddr>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).ok()?;
    let pid = msg.cmsgs().ok()?.find_map(|c| match c {
        ControlMessageOwned::ScmCredentials(creds) => Some(creds.pid()),
        _ => None,
    })?;
    let n = msg.bytes;
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .any(|l| l == "READY=1")
        .then_some(pid)
}

/// Whether `pid` descends from `ancestor` (in systemd's terms: it runs in
/// the service's cgroup, which every child of the launcher does).
fn descends_from(mut pid: i32, ancestor: i32) -> bool {
    while pid > 1 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some(ppid) = stat
            .rsplit_once(") ")
            .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse().ok())
        else {
            return false;
        };
        if ppid == ancestor {
            return true;
        }
        pid = ppid;
    }
    false
}

#[test]
fn tend_boot_service_notifies_and_stops_as_the_unit_says_root() {
    let dir = TempDir::new("boot-service");
    let rootfs = dir.path("rootfs");
    let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-template/build");
    let out = Command::new(build).arg(&rootfs).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(rootfs.join("etc/tend/units/marker.toml"), MARKER).unwrap();

    let socket_path = dir.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    // As systemd's own: any user may send (the machine's PID 1 is its user
    // namespace's root, not host root).
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    setsockopt(&socket, sockopt::PassCred, &true).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();

    let name = format!("tend-svc-{}", std::process::id());
    let argv = exec_start(&name, &rootfs);
    let log = dir.path("boot.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut launcher = Command::new(&argv[0])
        .args(&argv[1..])
        .env("NOTIFY_SOCKET", &socket_path)
        .env_remove("RUST_BACKTRACE")
        .env_remove("TEND_LOG")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let show = || std::fs::read_to_string(&log).unwrap_or_default();
    // A failed assertion must not leave the machine running: TERM to the
    // launcher (a graceful stop of its machine) when this test unwinds.
    let mut stop = Stop(Some(launcher.id()));

    let sender = await_some(
        "READY=1 at the service's notify socket",
        Duration::from_secs(30),
        || {
            if let Ok(Some(status)) = launcher.try_wait() {
                panic!("tend boot exited early ({status}): {}", show());
            }
            ready_sender(&socket)
        },
    );
    let main_pid = launcher.id() as i32;
    assert_ne!(
        sender, main_pid,
        "the launcher itself notified: NotifyAccess=main would do"
    );
    assert!(
        descends_from(sender, main_pid),
        "READY=1 from {sender}, outside the service"
    );

    // KillMode=mixed: the stop signal goes to the main process only.
    send(launcher.id(), libc::SIGTERM);
    let code = exit_code_within(&mut launcher, Duration::from_secs(45));
    // Reaped: its pid may be another process's now.
    stop.0 = None;
    assert_eq!(code, 0, "{}", show());
    let stopped = std::fs::read_to_string(rootfs.join("root/stopped")).unwrap_or_default();
    assert_eq!(
        stopped.trim(),
        "stopped",
        "the unit's TERM handler did not run: {}",
        show()
    );
}

/// Sends TERM to a launcher not reaped yet when dropped.
struct Stop(Option<u32>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: kill takes plain integers; a pid that is gone gives ESRCH.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
    }
}

/// Journald's socket as the service sees it, played by the test: `/run/systemd`
/// (made for the test when the host has none, removed after) gets a tmpfs in
/// a mount namespace of the launcher's own, and the test's socket is bound
/// at `/run/systemd/journal/socket` there.
struct Journal {
    dir: TempDir,
    socket: UnixDatagram,
    made_run_systemd: bool,
}

impl Journal {
    fn new() -> Journal {
        let dir = TempDir::new("journal");
        let path = dir.path("socket");
        let socket = UnixDatagram::bind(&path).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let made_run_systemd = std::fs::create_dir("/run/systemd").is_ok();
        Journal {
            dir,
            socket,
            made_run_systemd,
        }
    }

    /// `argv` run in a mount namespace where the test's socket is journald's.
    fn command(&self, argv: &[String]) -> Command {
        let script = format!(
            "mount --make-rprivate / && mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal \
             && mount --bind {} /run/systemd/journal && exec \"$@\"",
            self.dir.0.display()
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "sh", "-c", &script, "sh"]).args(argv);
        cmd
    }

    /// The next native message, its fields as (name, value) pairs.
    fn next(&self) -> Option<Vec<(String, String)>> {
        let mut buf = vec![0; 65536];
        let n = self.socket.recv(&mut buf).ok()?;
        Some(journal_fields(&buf[..n]))
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if self.made_run_systemd {
            let _ = std::fs::remove_dir("/run/systemd");
        }
    }
}

/// journald's native protocol: `NAME=value\n`, or `NAME\n`, a 64-bit
/// little-endian length, the value, `\n`.
fn journal_fields(mut data: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while let Some(end) = data.iter().position(|b| *b == b'\n' || *b == b'=') {
        let name = String::from_utf8_lossy(&data[..end]).into_owned();
        let (value, rest) = if data[end] == b'=' {
            let stop = data[end..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(data.len(), |p| end + p);
            (&data[end + 1..stop], data.get(stop + 1..).unwrap_or_default())
        } else {
            let len = u64::from_le_bytes(data[end + 1..end + 9].try_into().unwrap()) as usize;
            (&data[end + 9..end + 9 + len], &data[end + 10 + len..])
        };
        fields.push((name, String::from_utf8_lossy(value).into_owned()));
        data = rest;
    }
    fields
}

/// Started by systemd with its log in the journal, the machine's lines carry
/// TEND_MACHINE=NAME, PID 1's own too: after the pivot it still reaches
/// journald, through the socket its launcher connected. A journald that
/// stops reading blocks nothing.
#[test]
fn journal_lines_name_the_machine_pid1_included_root() {
    let dir = TempDir::new("boot-journal");
    let rootfs = dir.path("rootfs");
    let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-template/build");
    let out = Command::new(build).arg(&rootfs).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(rootfs.join("etc/tend/units/marker.toml"), MARKER).unwrap();
    let journal = Journal::new();

    let name = format!("tend-journal-{}", std::process::id());
    // StandardError=journal: systemd names the stream in JOURNAL_STREAM.
    let log = dir.path("stream");
    let stream = std::fs::File::create(&log).unwrap();
    let stat = nix::sys::stat::fstat(&stream).unwrap();
    let mut launcher = journal
        .command(&exec_start(&name, &rootfs))
        .env("JOURNAL_STREAM", format!("{}:{}", stat.st_dev, stat.st_ino))
        .env("TEND_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(stream.try_clone().unwrap())
        .stderr(stream)
        .spawn()
        .unwrap();
    let mut stop = Stop(Some(launcher.id()));
    let show = || std::fs::read_to_string(&log).unwrap_or_default();

    // "started marker (pid N)" is PID 1's line: it starts the units.
    let fields = await_some("PID 1's line at journald's socket", Duration::from_secs(30), || {
        if let Ok(Some(status)) = launcher.try_wait() {
            panic!("tend boot exited early ({status}): {}", show());
        }
        let fields = journal.next()?;
        let message = fields.iter().find(|(k, _)| k == "MESSAGE")?;
        message.1.starts_with("started marker").then_some(fields)
    });
    assert!(
        fields.contains(&("TEND_MACHINE".into(), name.clone())),
        "no TEND_MACHINE={name}: {fields:?}"
    );
    assert!(
        fields.contains(&("SYSLOG_IDENTIFIER".into(), "tend".into())),
        "{fields:?}"
    );

    // A journald that reads no more (the kernel queues 10 datagrams here)
    // stalls nothing: the shutdown, logged line by line, ends as usual.
    send(launcher.id(), libc::SIGTERM);
    let code = exit_code_within(&mut launcher, Duration::from_secs(45));
    stop.0 = None;
    assert_eq!(code, 0, "{}", show());
}
