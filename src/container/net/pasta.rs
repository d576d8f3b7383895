//! `--net pasta`: user-mode networking by pasta (Debian `passt`), for a
//! rootless machine (or any): it gives the container a copy of the host's
//! address and routes, carries its connections out through the host's
//! sockets, and forwards `--publish` ports in. pasta joins the container's
//! namespaces through descriptors it inherits (see [`super::usermode`]),
//! configures the interface, then runs in the background: its pid is kept
//! in the registry (`NAME.pasta`) to stop it with the machine, or at the
//! next boot when the launcher was killed.

use std::path::{Path, PathBuf};

use crate::sys::spawn;

use super::apply::find_tool;
use super::types::{Proto, Publish};
use super::usermode::{self, fd_path, ErrFile, NETNS_FD, USERNS_FD};
use super::Error;

/// The container side's name, as with veth.
const IFNAME: &str = super::plan::INSIDE_IF;

/// pasta's arguments, for these ports (`none`: only what is asked).
pub fn args(publish: &[Publish], userns: bool, uid: u32) -> Vec<String> {
    // It watches the path of the namespace to quit when it goes; ours is
    // a descriptor it closes: tend stops it instead.
    let mut args: Vec<String> = [
        "--config-net",
        "--quiet",
        "--ipv4-only",
        "--no-netns-quit",
        "--ns-ifname",
        IFNAME,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // As root it would drop to nobody, and could not enter the container.
    args.extend(["--runas".into(), uid.to_string()]);
    for (flag, proto) in [("-t", Proto::Tcp), ("-u", Proto::Udp)] {
        let specs: Vec<String> = publish
            .iter()
            .filter(|p| p.proto == proto)
            .map(|p| match p.ip {
                Some(ip) => format!("{ip}/{}:{}", p.host_port, p.port),
                None => format!("{}:{}", p.host_port, p.port),
            })
            .collect();
        args.push(flag.into());
        args.push(if specs.is_empty() {
            "none".into()
        } else {
            specs.join(",")
        });
    }
    if userns {
        args.extend(["--userns".into(), fd_path(USERNS_FD)]);
    }
    args.extend(["--netns".into(), fd_path(NETNS_FD)]);
    args
}

/// Fails when pasta is not installed.
pub fn check() -> Result<PathBuf, Error> {
    find_tool("pasta").ok_or(Error::Missing("--net pasta: pasta (Debian package passt)"))
}

/// A running pasta, stopped on [`stop`].
#[derive(Debug)]
pub struct Pasta {
    pub pid: i32,
    record: PathBuf,
}

fn record_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pasta"))
}

/// Starts pasta for the container whose namespaces are `target`; returns
/// once its interface is configured.
pub fn start(
    dir: &Path,
    name: &str,
    target: &super::Target,
    publish: &[Publish],
    userns: bool,
) -> Result<Pasta, Error> {
    let tool = check()?;
    let io = |source| Error::Tool { tool: "pasta", source };
    let fds = usermode::ns_fds("pasta", target, userns)?;
    let pidfile = dir.join(format!("{name}.pasta-pid"));
    let (errfile, err) = ErrFile::create(dir, name, "pasta")?;
    let mut argv = usermode::argv(tool, args(publish, userns, nix::unistd::geteuid().as_raw()));
    argv.extend(["--pid".into(), pidfile.clone().into()]);
    // pasta forks into the background once the interface is up.
    let status = spawn::run(usermode::spawn_spec(&argv, err, &fds)).map_err(|e| io(e.source));
    let pid = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok());
    let _ = std::fs::remove_file(&pidfile);
    match (status?, pid) {
        (s, Some(pid)) if s.success() => {
            let record = record_path(dir, name);
            let launcher = std::process::id();
            std::fs::write(&record, format!("{launcher} {pid}\n")).map_err(io)?;
            Ok(Pasta { pid, record })
        }
        _ => Err(errfile.failed("no pid")),
    }
}

/// Stops a pasta, if `pid` still is one.
fn kill(pid: i32) {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.starts_with("pasta") || comm.starts_with("passt") {
        let _ = crate::sys::process::kill(pid, libc::SIGTERM);
    }
}

pub fn stop(pasta: Pasta) {
    kill(pasta.pid);
    let _ = std::fs::remove_file(&pasta.record);
}

/// Stops the pastas of launchers that died (`NAME.pasta`: launcher, pasta),
/// found in the registry directory's `listing`.
pub fn sweep(listing: &[std::path::PathBuf]) {
    for path in listing {
        if path.extension().map_or(true, |x| x != "pasta") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut words = text.split_whitespace().map(|w| w.parse::<i32>().ok());
        if let (Some(Some(launcher)), Some(Some(pid))) = (words.next(), words.next()) {
            if launcher > 0 && Path::new(&format!("/proc/{launcher}")).exists() {
                continue;
            }
            kill(pid);
        }
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::net::types::parse_publish;

    #[test]
    fn ports_and_namespaces_become_arguments() {
        let publish = [
            parse_publish("8080:80").unwrap(),
            parse_publish("127.0.0.1:8443:443").unwrap(),
            parse_publish("5353:53/udp").unwrap(),
        ];
        let a = args(&publish, true, 1000).join(" ");
        assert!(a.contains("-t 8080:80,127.0.0.1/8443:443 -u 5353:53"), "{a}");
        assert!(a.contains("--runas 1000"));
        assert!(a.ends_with("--userns /proc/self/fd/3 --netns /proc/self/fd/4"), "{a}");
        let a = args(&[], false, 0).join(" ");
        assert!(a.contains("-t none -u none") && !a.contains("--userns"), "{a}");
    }
}
