//! What the user-mode network tools (pasta, slirp4netns) share: the
//! container's namespaces handed over as inherited descriptors (opening
//! /proc/PID/ns/* of another process is refused once a tool has dropped
//! its capabilities), and the tool's stderr kept in a file of the registry
//! for the one line an error shows.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{Error, Target};
use crate::sys::spawn::{self, Spawn};

/// Where the tool finds the container's user and network namespaces.
pub const USERNS_FD: i32 = 3;
pub const NETNS_FD: i32 = 4;

/// How the tool names an inherited descriptor.
pub fn fd_path(fd: i32) -> String {
    format!("/proc/self/fd/{fd}")
}

/// The namespaces of `target` as (descriptor, number in the tool); the
/// user namespace only when the container has one of its own.
pub fn ns_fds(tool: &'static str, target: &Target, userns: bool) -> Result<Vec<(OwnedFd, i32)>, Error> {
    let io = |source| Error::Tool { tool, source };
    let mut fds = vec![(crate::sys::ns::open_ns_file(&target.netns).map_err(io)?, NETNS_FD)];
    if userns {
        fds.push((crate::sys::ns::open_ns_file(&target.userns).map_err(io)?, USERNS_FD));
    }
    Ok(fds)
}

/// The tool at `tool` with `args`, as a command line.
pub fn argv(tool: PathBuf, args: Vec<String>) -> Vec<OsString> {
    let mut argv = vec![tool.into_os_string()];
    argv.extend(args.into_iter().map(OsString::from));
    argv
}

/// How a tool starts: no input, its output dropped, its stderr into `err`
/// (see [`ErrFile`]), and `fds` at their numbers.
pub fn spawn_spec<'a>(argv: &'a [OsString], err: File, fds: &[(OwnedFd, i32)]) -> Spawn<'a> {
    Spawn {
        argv,
        stdin: spawn::dev_null().map(Into::into),
        stdout: spawn::dev_null().map(Into::into),
        stderr: Some(OwnedFd::from(err).into()),
        pass: fds.iter().map(|(fd, number)| (fd.as_raw_fd(), *number)).collect(),
        ..Default::default()
    }
}

/// A tool's stderr, in `DIR/NAME.TOOL-err` while it starts: a file, not a
/// pipe, as the tool keeps it open (and may write to it) once running.
pub struct ErrFile {
    tool: &'static str,
    path: PathBuf,
}

impl ErrFile {
    /// The file, and a handle on it for the tool's stderr.
    pub fn create(dir: &Path, name: &str, tool: &'static str) -> Result<(ErrFile, File), Error> {
        let path = dir.join(format!("{name}.{tool}-err"));
        let file = File::create(&path).map_err(|source| Error::Tool { tool, source })?;
        Ok((ErrFile { tool, path }, file))
    }

    /// The failure, with the last lines the tool wrote (the cause is often
    /// just before a summary), else `otherwise`.
    pub fn failed(self, otherwise: &str) -> Error {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        Error::UserMode {
            tool: self.tool,
            reason: format!("{} failed: {}", self.tool, last_lines(&text, otherwise)),
        }
    }
}

impl Drop for ErrFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Up to three last non-empty lines of `text`, joined by `; `.
fn last_lines(text: &str, otherwise: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    match lines.len() {
        0 => otherwise.to_string(),
        n => lines[n.saturating_sub(3)..].join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_make_one() {
        let text = "starting\n\nopen(\"/dev/net/tun\"): Permission denied\nchild failed(1)\n";
        assert_eq!(
            last_lines(text, "x"),
            "starting; open(\"/dev/net/tun\"): Permission denied; child failed(1)"
        );
        assert_eq!(last_lines("a\nb\nc\nd\n", "x"), "b; c; d");
        assert_eq!(last_lines("\n", "no pid"), "no pid");
    }
}
