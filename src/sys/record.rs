//! A [`Sys`] that makes no call and writes each one down as a line, so tests
//! (and a dry run) can see the exact order of the mount steps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;

use super::mount::{Kind, Sys};

/// Records calls as text: `mount proc /r/proc proc nosuid|nodev|noexec`.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Every call made, in order.
    pub calls: Vec<String>,
    /// What `kind` answers; a path not listed does not exist, except that
    /// everything exists when `everything_exists` is set.
    pub paths: BTreeMap<PathBuf, Kind>,
    pub everything_exists: bool,
    /// The first call whose line starts with this fails with the errno.
    pub fail: Option<(String, Errno)>,
}

impl Recorder {
    /// A recorder for which every path exists as a directory.
    pub fn permissive() -> Recorder {
        Recorder {
            everything_exists: true,
            ..Recorder::default()
        }
    }

    fn record(&mut self, line: String) -> Result<(), Errno> {
        let failing = match &self.fail {
            Some((prefix, errno)) if line.starts_with(prefix.as_str()) => Some(*errno),
            _ => None,
        };
        self.calls.push(line);
        match failing {
            Some(errno) => Err(errno),
            None => Ok(()),
        }
    }
}

fn show(path: Option<&Path>) -> String {
    path.map_or("-".into(), |p| p.display().to_string())
}

/// Flags as `bind|rec`, without the `MS_` prefix, lowercase.
pub fn flag_names(flags: MsFlags) -> String {
    if flags.is_empty() {
        return "-".into();
    }
    flags
        .iter_names()
        .map(|(name, _)| name.trim_start_matches("MS_").to_lowercase())
        .collect::<Vec<_>>()
        .join("|")
}

impl Sys for Recorder {
    fn mount(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        let mut line = format!(
            "mount {} {} {} {}",
            show(source),
            target.display(),
            fstype.unwrap_or("-"),
            flag_names(flags)
        );
        if let Some(data) = data {
            line.push(' ');
            line.push_str(data);
        }
        self.record(line)
    }

    fn attach_tree(&mut self, fd: i32, target: &Path) -> Result<(), Errno> {
        self.record(format!("attach fd{fd} {}", target.display()))
    }

    fn umount_detach(&mut self, target: &Path) -> Result<(), Errno> {
        self.record(format!("umount-detach {}", target.display()))
    }

    fn set_read_only(&mut self, target: &Path, recursive: bool) -> Result<(), Errno> {
        let how = if recursive { "rec" } else { "top" };
        self.record(format!("read-only {} {how}", target.display()))
    }

    fn kind(&mut self, path: &Path) -> Option<Kind> {
        match self.paths.get(path) {
            Some(kind) => Some(*kind),
            None => self.everything_exists.then_some(Kind::Dir),
        }
    }

    fn mkdir_all(&mut self, path: &Path) -> Result<(), Errno> {
        self.record(format!("mkdir {}", path.display()))
    }

    fn create_file(&mut self, path: &Path) -> Result<(), Errno> {
        self.record(format!("touch {}", path.display()))
    }

    fn mknod(&mut self, path: &Path, major: u64, minor: u64, mode: u32) -> Result<(), Errno> {
        self.record(format!("mknod {} c {major} {minor} {mode:o}", path.display()))
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> Result<(), Errno> {
        self.record(format!("symlink {} -> {}", link.display(), target.display()))
    }

    fn chdir(&mut self, path: &Path) -> Result<(), Errno> {
        self.record(format!("chdir {}", path.display()))
    }

    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> Result<(), Errno> {
        self.record(format!("pivot_root {} {}", new_root.display(), put_old.display()))
    }

    fn sethostname(&mut self, name: &str) -> Result<(), Errno> {
        self.record(format!("sethostname {name}"))
    }

    fn set_fs_ids(&mut self, uid: u32, gid: u32) -> Result<(), Errno> {
        self.record(format!("set-fs-ids {uid}:{gid}"))
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> Result<(), Errno> {
        self.record(format!("chown {uid}:{gid} {}", path.display()))
    }
}
