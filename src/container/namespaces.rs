//! The namespaces of a container: which ones to create, and, for a user
//! namespace, writing the child's uid and gid maps from the launcher (only
//! a process outside may write them, once the child exists).

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::sys::spawn::{self, Spawn};

use super::options::BootOptions;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot clone into new namespaces")]
    Clone(#[source] io::Error),
    #[error("cannot run {tool}")]
    Tool {
        tool: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{tool} failed: {stderr}")]
    ToolFailed { tool: &'static str, stderr: String },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot bring up the loopback interface")]
    Loopback(#[source] io::Error),
}

/// `CLONE_NEW*` for these options: PID, mount, UTS, IPC and cgroup always;
/// network but for `--net host` and `ns:PATH`; user with `--userns`.
pub fn clone_flags(o: &BootOptions) -> libc::c_int {
    let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWCGROUP;
    if o.id_range.is_some() {
        // The user, network, UTS and IPC namespaces exist already (see
        // container::userns): the child enters them around its mounts.
        return flags;
    }
    flags |= libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if o.net.is_new() {
        flags |= libc::CLONE_NEWNET;
    }
    if o.userns {
        flags |= libc::CLONE_NEWUSER;
    }
    flags
}

/// A range of host ids (recorded by the registry, which owns the type).
pub use crate::registry::IdRange as Range;

/// The first range of `user` (by name or number) in the text of
/// /etc/subuid or /etc/subgid (`name:start:count` per line).
pub fn parse_subid(text: &str, user: &str, id: u32) -> Option<Range> {
    let id = id.to_string();
    text.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let owner = fields.next()?;
        if owner != user && owner != id {
            return None;
        }
        let start = fields.next()?.parse().ok()?;
        let count = fields.next()?.parse().ok()?;
        (count > 0).then_some(Range { start, count })
    })
}

/// The name of `uid` in the text of /etc/passwd ("" if none: the subid
/// files are then searched by number only). Read as text, not through NSS:
/// glibc's NSS cannot work in a static binary anyway and would link its
/// resolver and dynamic loader into it.
fn user_name(passwd: &str, uid: u32) -> String {
    crate::unit::users::parse_passwd(passwd)
        .into_iter()
        .find(|u| u.uid == uid)
        .map(|u| u.name)
        .unwrap_or_default()
}

/// The maps to write: our own id as 0, then the subordinate range as 1..
pub fn map_lines(own: u32, range: Option<Range>) -> Vec<[u32; 3]> {
    let mut lines = vec![[0, own, 1]];
    if let Some(r) = range {
        lines.push([1, r.start, r.count]);
    }
    lines
}

/// Writes the uid and gid maps of `pid`: with newuidmap/newgidmap when the
/// user has subordinate ranges for both, else only itself as root (and
/// `setgroups` denied, as the kernel requires for an unprivileged gid map).
pub fn write_maps(pid: i32) -> Result<(), Error> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let user = user_name(&read("/etc/passwd"), uid);
    let subuid = parse_subid(&read("/etc/subuid"), &user, uid);
    let subgid = parse_subid(&read("/etc/subgid"), &user, gid);
    let tools = (find_tool("newuidmap"), find_tool("newgidmap"));
    if let (Some(su), Some(sg), (Some(newuidmap), Some(newgidmap))) = (subuid, subgid, tools) {
        run_tool("newuidmap", &newuidmap, pid, &map_lines(uid, Some(su)))?;
        return run_tool("newgidmap", &newgidmap, pid, &map_lines(gid, Some(sg)));
    }
    let proc = PathBuf::from(format!("/proc/{pid}"));
    write(&proc.join("setgroups"), "deny")?;
    write(&proc.join("uid_map"), &format!("0 {uid} 1\n"))?;
    write(&proc.join("gid_map"), &format!("0 {gid} 1\n"))
}

/// As root: the container's ids 0..count map to `range`, uids and gids.
pub fn write_range_maps(pid: i32, range: Range) -> Result<(), Error> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let line = format!("0 {} {}\n", range.start, range.count);
    write(&proc.join("uid_map"), &line)?;
    write(&proc.join("gid_map"), &line)
}

fn find_tool(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn run_tool(tool: &'static str, path: &Path, pid: i32, lines: &[[u32; 3]]) -> Result<(), Error> {
    let mut argv: Vec<OsString> = vec![path.into(), pid.to_string().into()];
    argv.extend(lines.iter().flatten().map(|n| n.to_string().into()));
    let spec = Spawn {
        argv: &argv,
        stdin: spawn::dev_null().map(Into::into),
        stdout: spawn::dev_null().map(Into::into),
        ..Default::default()
    };
    let (status, stderr) = spawn::run_capturing_stderr(spec).map_err(|e| Error::Tool { tool, source: e.source })?;
    if status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
    Err(Error::ToolFailed { tool, stderr })
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::options::Net;

    const SUBUID: &str = "alice:100000:65536\n1001:200000:1000\nbob:300000:0\n";

    #[test]
    fn subordinate_ranges_by_name_or_number() {
        let r = |u, id| parse_subid(SUBUID, u, id);
        assert_eq!(
            r("alice", 1000),
            Some(Range {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(
            r("carol", 1001),
            Some(Range {
                start: 200000,
                count: 1000
            })
        );
        assert_eq!(r("bob", 1002), None, "an empty range is none");
        assert_eq!(r("dave", 1003), None);
        assert_eq!(parse_subid("garbage\n", "x", 1), None);
    }

    #[test]
    fn own_name_from_passwd_text() {
        let passwd = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(user_name(passwd, 1000), "alice");
        assert_eq!(user_name(passwd, 0), "root");
        assert_eq!(user_name(passwd, 1001), "", "no entry: by number only");
    }

    #[test]
    fn maps_put_ourselves_at_zero() {
        assert_eq!(map_lines(1000, None), vec![[0, 1000, 1]]);
        let range = Some(Range {
            start: 100000,
            count: 65536,
        });
        assert_eq!(map_lines(1000, range), vec![[0, 1000, 1], [1, 100000, 65536]]);
    }

    #[test]
    fn flags_follow_the_options() {
        let mut o = BootOptions::default();
        let f = clone_flags(&o);
        assert!(f & libc::CLONE_NEWNET != 0 && f & libc::CLONE_NEWUSER == 0);
        o.net = Net::Host;
        o.userns = true;
        let f = clone_flags(&o);
        assert!(f & libc::CLONE_NEWNET == 0 && f & libc::CLONE_NEWUSER != 0);
        assert!(f & libc::CLONE_NEWPID != 0 && f & libc::CLONE_NEWCGROUP != 0);
    }
}
