//! `--net slirp4netns`: user-mode networking by slirp4netns (Debian
//! `slirp4netns`), for a rootless machine (or any), as podman 4 does it:
//! the container gets `tap0` with 10.0.2.100/24, its gateway 10.0.2.2 and
//! a DNS forwarder at 10.0.2.3; its connections leave through the host's
//! sockets, and `--publish` ports are forwarded in through slirp4netns's
//! API socket. The host's loopback stays closed to the container
//! (`--disable-host-loopback`), as with podman.
//!
//! slirp4netns stays the launcher's child: `--ready-fd` says when the
//! interface and the API socket are up (no sleeping), and `--exit-fd`
//! holds the read end of a pipe only the launcher writes, so slirp4netns
//! ends when the launcher closes it at the machine's end, or when the
//! kernel does after a SIGKILL: nothing to sweep but the API socket of a
//! launcher killed while it published.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::sys::spawn;

use super::apply::find_tool;
use super::types::Publish;
use super::usermode::{self, fd_path, ErrFile, NETNS_FD, USERNS_FD};
use super::{Error, Target};

const TOOL: &str = "slirp4netns";

/// The container side's name, as podman names it with slirp4netns.
const IFNAME: &str = "tap0";

/// What slirp4netns gives the container (its defaults for 10.0.2.0/24).
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

/// The pipes' ends in slirp4netns, beside the namespaces' (3 and 4).
const EXIT_FD: i32 = 5;
const READY_FD: i32 = 6;

/// slirp4netns's arguments; `api`: the socket to publish ports through.
pub fn args(api: Option<&Path>, userns: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "--configure",
        // podman's: fewer, larger segments through the user-mode stack.
        "--mtu=65520",
        "--disable-host-loopback",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--exit-fd={EXIT_FD}"));
    args.push(format!("--ready-fd={READY_FD}"));
    if let Some(api) = api {
        args.push(format!("--api-socket={}", api.display()));
    }
    if userns {
        args.push(format!("--userns-path={}", fd_path(USERNS_FD)));
    }
    args.extend(["--netns-type=path".into(), fd_path(NETNS_FD), IFNAME.into()]);
    args
}

/// The API request that forwards one published port to the container.
pub fn hostfwd(p: &Publish) -> String {
    serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": p.proto.to_string(),
            "host_addr": p.ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
            "host_port": p.host_port,
            "guest_addr": ADDRESS.to_string(),
            "guest_port": p.port,
        }
    })
    .to_string()
}

/// Why a reply of the API refuses the request; `None` when it took it.
pub fn refusal(reply: &str) -> Option<String> {
    let value: serde_json::Value = match serde_json::from_slice(reply.as_bytes()) {
        Ok(value) => value,
        Err(_) => return Some(format!("unexpected reply {reply:?}")),
    };
    if value.get("return").is_some() {
        return None;
    }
    let error = value.get("error");
    let desc = error.and_then(|e| e.get("desc")).and_then(|d| d.as_str());
    Some(desc.map_or_else(|| format!("unexpected reply {reply:?}"), str::to_string))
}

/// Fails when slirp4netns is not installed.
pub fn check() -> Result<PathBuf, Error> {
    find_tool(TOOL).ok_or(Error::Missing(
        "--net slirp4netns: slirp4netns (Debian package slirp4netns)",
    ))
}

/// A running slirp4netns, ended by [`stop`].
#[derive(Debug)]
pub struct Slirp {
    /// Our child, not reaped until [`stop`].
    pid: i32,
    /// Its `--exit-fd`'s other end: closing it ends slirp4netns.
    exit: OwnedFd,
}

/// The API socket of launcher `pid`: removed once the ports are published,
/// by the next boot when that launcher was killed first.
fn api_path(dir: &Path, name: &str, pid: u32) -> PathBuf {
    dir.join(format!("{name}.{pid}.slirp"))
}

/// Starts slirp4netns for the container whose namespaces are `target`;
/// returns once its interface is up and `publish` forwarded.
pub fn start(dir: &Path, name: &str, target: &Target, publish: &[Publish], userns: bool) -> Result<Slirp, Error> {
    let tool = check()?;
    let io = |source| Error::Tool { tool: TOOL, source };
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io(e.into()));
    let (exit_r, exit) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let mut fds = usermode::ns_fds(TOOL, target, userns)?;
    fds.extend([(exit_r, EXIT_FD), (ready_w, READY_FD)]);
    let api = (!publish.is_empty()).then(|| api_path(dir, name, std::process::id()));
    if let Some(api) = &api {
        // One of a killed launcher whose pid came round again.
        let _ = std::fs::remove_file(api);
    }
    let (errfile, err) = ErrFile::create(dir, name, TOOL)?;
    let argv = usermode::argv(tool, args(api.as_deref(), userns));
    let pid = spawn::spawn(usermode::spawn_spec(&argv, err, &fds)).map_err(|e| io(e.source));
    // Our copies of its ends go now: the ready pipe then reads its end
    // when slirp4netns dies before it is ready.
    drop(fds);
    let slirp = Slirp { pid: pid?, exit };
    let started = if await_ready(ready_r) {
        api.as_deref().map_or(Ok(()), |api| forward(api, publish))
    } else {
        Err(errfile.failed("ended before it was ready"))
    };
    if let Some(api) = &api {
        let _ = std::fs::remove_file(api);
    }
    match started {
        Ok(()) => Ok(slirp),
        Err(e) => {
            stop(slirp);
            Err(e)
        }
    }
}

/// Whether slirp4netns wrote its "1" (it closes the pipe without, when it
/// fails).
fn await_ready(ready: OwnedFd) -> bool {
    let mut byte = [0u8; 1];
    let mut file = std::fs::File::from(ready);
    loop {
        match file.read(&mut byte) {
            Ok(1) => return byte[0] == b'1',
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            _ => return false,
        }
    }
}

/// Forwards each published port through the API socket at `api`.
fn forward(api: &Path, publish: &[Publish]) -> Result<(), Error> {
    for p in publish {
        let refused = |reason: String| Error::UserMode {
            tool: TOOL,
            reason: format!("cannot publish {p}: {reason}"),
        };
        let reply = request(api, &hostfwd(p)).map_err(|e| refused(crate::sys::describe(&e)))?;
        if let Some(reason) = refusal(&reply) {
            return Err(refused(reason));
        }
    }
    Ok(())
}

/// One request: slirp4netns answers once the sending side is shut.
fn request(api: &Path, text: &str) -> std::io::Result<String> {
    let mut stream = std::os::unix::net::UnixStream::connect(api)?;
    stream.write_all(text.as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// Ends slirp4netns and reaps it: the exit pipe closed, and a SIGTERM
/// (the launcher must not hang on a slirp4netns that missed the pipe).
pub fn stop(slirp: Slirp) {
    let Slirp { pid, exit } = slirp;
    drop(exit);
    // Still our unreaped child: the pid cannot be another process's.
    let _ = crate::sys::process::kill(pid, libc::SIGTERM);
    let _ = crate::sys::process::wait_for(pid, false);
}

/// Removes the API sockets of launchers that died (`NAME.PID.slirp`),
/// found in the registry directory's `listing`.
pub fn sweep(listing: &[std::path::PathBuf]) {
    for path in listing {
        if path.extension().map_or(true, |x| x != "slirp") {
            continue;
        }
        let launcher = path
            .file_stem()
            .and_then(|s| Path::new(s).extension())
            .and_then(|pid| pid.to_str()?.parse::<u32>().ok());
        if launcher.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::net::types::parse_publish;

    #[test]
    fn options_and_namespaces_become_arguments() {
        let a = args(Some(Path::new("/run/x/web.7.slirp")), true).join(" ");
        assert_eq!(
            a,
            "--configure --mtu=65520 --disable-host-loopback --exit-fd=5 --ready-fd=6 \
             --api-socket=/run/x/web.7.slirp --userns-path=/proc/self/fd/3 \
             --netns-type=path /proc/self/fd/4 tap0"
        );
        let a = args(None, false).join(" ");
        assert!(!a.contains("--api-socket") && !a.contains("--userns-path"), "{a}");
    }

    #[test]
    fn published_ports_become_requests_and_replies_are_read() {
        let p = parse_publish("127.0.0.1:8080:80").unwrap();
        let v: serde_json::Value = serde_json::from_str(&hostfwd(&p)).unwrap();
        assert_eq!(v["execute"], "add_hostfwd");
        let a = &v["arguments"];
        assert_eq!(
            (&a["proto"], &a["host_addr"], &a["host_port"], &a["guest_port"]),
            (&"tcp".into(), &"127.0.0.1".into(), &8080.into(), &80.into())
        );
        let v: serde_json::Value = serde_json::from_str(&hostfwd(&parse_publish("53:53/udp").unwrap())).unwrap();
        assert_eq!(
            (&v["arguments"]["proto"], &v["arguments"]["host_addr"]),
            (&"udp".into(), &"0.0.0.0".into())
        );
        assert_eq!(refusal(r#"{"return": {"id": 1}}"#), None);
        assert_eq!(
            refusal(r#"{"error": {"desc": "bad request: add_hostfwd: slirp_add_hostfwd failed"}}"#).unwrap(),
            "bad request: add_hostfwd: slirp_add_hostfwd failed"
        );
        assert!(refusal("").unwrap().starts_with("unexpected reply"));
    }

    #[test]
    fn only_sockets_of_dead_launchers_are_swept() {
        let dir = std::env::temp_dir().join(format!("tend-slirp-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let live = api_path(&dir, "web", std::process::id());
        let dead = api_path(&dir, "db", u32::MAX);
        let other = dir.join("web.json");
        for f in [&live, &dead, &other] {
            std::fs::write(f, "").unwrap();
        }
        sweep(&super::super::listing(&dir));
        assert!(live.exists() && !dead.exists() && other.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
