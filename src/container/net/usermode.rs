//! What the user-mode network tools (pasta, slirp4netns) share: the
//! container's namespaces handed over as inherited descriptors (opening
//! /proc/PID/ns/* of another process is refused once a tool has dropped
//! its capabilities), and the tool's stderr kept in a file of the registry
//! for the one line an error shows.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::{Error, Target};

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

    /// The failure, with the last line the tool wrote (else `otherwise`).
    pub fn failed(self, otherwise: &str) -> Error {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let line = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or(otherwise);
        Error::UserMode {
            tool: self.tool,
            reason: format!("{} failed: {}", self.tool, line.trim()),
        }
    }
}

impl Drop for ErrFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
