//! `tend boot --userns-chown`: a rootfs whose file system cannot be
//! idmapped is chowned once into the machine's id range, as
//! systemd-nspawn's `--private-users-ownership=chown` does. Every id keeps
//! its low 16 bits and takes the range's high ones (host id X of an
//! unshifted tree becomes START+X; a tree shifted to another range moves
//! to this one). The walk follows no symlink (each file is opened
//! `O_PATH | O_NOFOLLOW` and changed through that descriptor, a symlink
//! itself) and enters no other file system; it restores the
//! mode chown cleared (setuid, setgid), and shifts the ids in POSIX ACLs
//! and in file capabilities (which chown drops: they are written back, as
//! version 3, rooted at the range).
//!
//! The record is the top directory itself, chowned last: owned by the
//! range, the tree is shifted and the next boot with the range walks
//! nothing; a walk cut short left it as it was, so the next boot walks
//! again (the shift is idempotent).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag};
use nix::unistd::{Gid, Uid};

/// The ids a shift moves together: 65536, from a multiple of 65536.
pub const SPAN: u32 = 0x1_0000;
const HIGH: u32 = !(SPAN - 1);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot chown {} into the id range", .path.display())]
    Walk {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("rootfs {} is owned by uid {uid} and gid {gid}, ids of two ranges: chown its top directory into one first", .path.display())]
    Mixed { path: PathBuf, uid: u32, gid: u32 },
}

/// What the walk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The top directory already belongs to the range: nothing walked.
    Already,
    /// Files whose ownership changed.
    Shifted(u64),
}

/// `id` moved to the range at `base` (a multiple of [`SPAN`]).
pub fn shifted(id: u32, base: u32) -> u32 {
    (base & HIGH) | (id & !HIGH)
}

/// Shifts the tree at `root` into the range at `base` (a multiple of
/// [`SPAN`]), unless its top directory says it is there already.
pub fn shift_tree(root: &Path, base: u32) -> Result<Outcome, Error> {
    let error = |path: &Path| {
        let path = path.to_path_buf();
        move |e: nix::Error| Error::Walk { path, source: e.into() }
    };
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let top = nix::fcntl::open(root, flags, Mode::empty()).map_err(error(root))?;
    let st = nix::sys::stat::fstat(&top).map_err(error(root))?;
    if st.st_uid & HIGH != st.st_gid & HIGH {
        return Err(Error::Mixed {
            path: root.to_path_buf(),
            uid: st.st_uid,
            gid: st.st_gid,
        });
    }
    if st.st_uid & HIGH == base & HIGH {
        return Ok(Outcome::Already);
    }
    let mut walk = Walk {
        path: root.to_path_buf(),
        dev: st.st_dev,
        base,
        changed: 0,
    };
    walk.dir(&top)?;
    // Last: the record that the whole tree is shifted.
    walk.entry(&top, &st).map_err(|source| Error::Walk {
        path: root.to_path_buf(),
        source,
    })?;
    Ok(Outcome::Shifted(walk.changed))
}

struct Walk {
    /// The directory being walked (for errors).
    path: PathBuf,
    dev: u64,
    base: u32,
    changed: u64,
}

impl Walk {
    /// Every entry of the open directory `dir`, depth first, then itself
    /// left to the caller.
    fn dir(&mut self, dir: &OwnedFd) -> Result<(), Error> {
        for name in self.names(dir)? {
            self.path.push(std::ffi::OsStr::from_bytes(name.to_bytes()));
            let result = self.one(dir.as_fd(), &name);
            if result.is_ok() {
                self.path.pop();
            }
            result?;
        }
        Ok(())
    }

    /// One entry of `dir` (whose path is `self.path`): its subtree first.
    /// Every change goes through a descriptor of the inode looked at (a
    /// symlink swapped in meanwhile is not followed out of the tree).
    fn one(&mut self, dir: BorrowedFd, name: &CStr) -> Result<(), Error> {
        let fail = |path: &Path| {
            let path = path.to_path_buf();
            move |source: io::Error| Error::Walk { path, source }
        };
        let nofollow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let file = nix::fcntl::openat(dir, name, OFlag::O_PATH | nofollow, Mode::empty())
            .map_err(|e| fail(&self.path)(e.into()))?;
        let st = nix::sys::stat::fstat(&file).map_err(|e| fail(&self.path)(e.into()))?;
        // Another file system mounted here: not ours to change.
        if st.st_dev != self.dev {
            return Ok(());
        }
        if kind(&st) == SFlag::S_IFDIR {
            // Through the O_PATH descriptor: that very directory.
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow;
            let sub = nix::fcntl::openat(&file, c".", flags, Mode::empty()).map_err(|e| fail(&self.path)(e.into()))?;
            self.dir(&sub)?;
        }
        self.entry(&file, &st).map_err(fail(&self.path))
    }

    /// The names in `dir` but `.` and `..`.
    fn names(&self, dir: &OwnedFd) -> Result<Vec<CString>, Error> {
        let fail = |e: nix::Error| Error::Walk {
            path: self.path.clone(),
            source: e.into(),
        };
        let own = dir.try_clone().map_err(|source| Error::Walk {
            path: self.path.clone(),
            source,
        })?;
        let mut listing = nix::dir::Dir::from_fd(own).map_err(fail)?;
        let mut names = Vec::new();
        for entry in listing.iter() {
            let name = entry.map_err(fail)?.file_name().to_owned();
            if name.as_bytes() != b"." && name.as_bytes() != b".." {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Shifts one file's owner, then puts back what chown took: its mode
    /// and file capabilities; and shifts its ACLs.
    /// `file` is an `O_PATH` descriptor (or the open top directory), of a
    /// symlink itself when it is one.
    fn entry(&mut self, file: &OwnedFd, st: &FileStat) -> io::Result<()> {
        let (uid, gid) = (shifted(st.st_uid, self.base), shifted(st.st_gid, self.base));
        if (uid, gid) == (st.st_uid, st.st_gid) {
            return Ok(());
        }
        let kind = kind(st);
        let at = proc_path(file.as_fd());
        let caps = match kind {
            SFlag::S_IFREG => get_xattr(&at, CAPS)?,
            _ => None,
        };
        nix::unistd::fchownat(
            file,
            c"",
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_EMPTY_PATH,
        )?;
        self.changed += 1;
        if kind == SFlag::S_IFLNK {
            return Ok(());
        }
        // chmod(2) has no form for an O_PATH descriptor: its /proc link
        // leads to that very inode.
        let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
        nix::sys::stat::fchmodat(AT_FDCWD, at.as_c_str(), mode, FchmodatFlags::FollowSymlink)?;
        if let Some(caps) = caps.and_then(|c| shift_caps(&c, self.base)) {
            set_xattr(&at, CAPS, &caps)?;
        }
        let acls: &[&CStr] = match kind {
            SFlag::S_IFDIR => &[ACL_ACCESS, ACL_DEFAULT],
            _ => &[ACL_ACCESS],
        };
        for &acl in acls {
            if let Some(new) = get_xattr(&at, acl)?.and_then(|a| shift_acl(&a, self.base)) {
                set_xattr(&at, acl, &new)?;
            }
        }
        Ok(())
    }
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

const CAPS: &CStr = c"security.capability";
const ACL_ACCESS: &CStr = c"system.posix_acl_access";
const ACL_DEFAULT: &CStr = c"system.posix_acl_default";

/// The file of a descriptor as a path (`/proc/self/fd/N`), for the calls
/// that take no `O_PATH` descriptor: following it reaches that inode.
fn proc_path(file: BorrowedFd) -> CString {
    // Digits only: no NUL inside.
    CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap_or_default()
}

/// An extended attribute; `None` when the file or its file system has none.
fn get_xattr(path: &CStr, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 512];
    // SAFETY: both names are NUL-terminated and `buf` is writable for the
    // length passed; all outlive the call.
    let n = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA | libc::EOPNOTSUPP) => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

fn set_xattr(path: &CStr, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated and `value` readable for its
    // length; all outlive the call, which only reads them.
    let rc = unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A POSIX ACL xattr (a version word, then entries of tag, permissions
/// and id, little-endian) with the ids of its named users and groups
/// shifted; `None` when there is nothing to change or it is not one.
pub fn shift_acl(acl: &[u8], base: u32) -> Option<Vec<u8>> {
    const USER: u16 = 0x02;
    const GROUP: u16 = 0x08;
    if acl.len() < 4 || (acl.len() - 4) % 8 != 0 || acl[..4] != 2u32.to_le_bytes() {
        return None;
    }
    let mut out = acl.to_vec();
    let mut changed = false;
    for entry in out[4..].chunks_exact_mut(8) {
        let tag = u16::from_le_bytes([entry[0], entry[1]]);
        if tag == USER || tag == GROUP {
            let id = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
            let new = shifted(id, base);
            changed |= new != id;
            entry[4..].copy_from_slice(&new.to_le_bytes());
        }
    }
    changed.then_some(out)
}

/// A `security.capability` xattr rooted at the range: version 2 (rooted
/// at host root) and version 3 (rooted at its own id) become version 3
/// rooted at the shifted root id. `None` when it is not one.
pub fn shift_caps(caps: &[u8], base: u32) -> Option<Vec<u8>> {
    const REVISION_MASK: u32 = 0xFF00_0000;
    const V2: u32 = 0x0200_0000;
    const V3: u32 = 0x0300_0000;
    let magic = u32::from_le_bytes(caps.get(..4)?.try_into().ok()?);
    let root = match (magic & REVISION_MASK, caps.len()) {
        (V2, 20) => 0,
        (V3, 24) => u32::from_le_bytes(caps[20..24].try_into().ok()?),
        _ => return None,
    };
    let mut out = caps[..20].to_vec();
    out[..4].copy_from_slice(&((magic & !REVISION_MASK) | V3).to_le_bytes());
    out.extend_from_slice(&shifted(root, base).to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_low_bits_and_take_the_range() {
        let base = 0x0008_0000;
        assert_eq!(shifted(0, base), base);
        assert_eq!(shifted(1000, base), base + 1000);
        assert_eq!(shifted(0x0009_0000 + 7, base), base + 7, "from another range");
        assert_eq!(shifted(base + 5, base), base + 5, "idempotent");
    }

    #[test]
    fn acl_ids_of_named_users_and_groups_shift() {
        let entry = |tag: u16, id: u32| {
            let mut e = tag.to_le_bytes().to_vec();
            e.extend(7u16.to_le_bytes());
            e.extend(id.to_le_bytes());
            e
        };
        let mut acl = 2u32.to_le_bytes().to_vec();
        acl.extend(entry(0x01, u32::MAX)); // owner: no id
        acl.extend(entry(0x02, 1000)); // user 1000
        acl.extend(entry(0x08, 33)); // group 33
        acl.extend(entry(0x20, u32::MAX)); // other
        let new = shift_acl(&acl, 0x0008_0000).unwrap();
        let mut expect = 2u32.to_le_bytes().to_vec();
        expect.extend(entry(0x01, u32::MAX));
        expect.extend(entry(0x02, 0x0008_0000 + 1000));
        expect.extend(entry(0x08, 0x0008_0000 + 33));
        expect.extend(entry(0x20, u32::MAX));
        assert_eq!(new, expect);
        assert_eq!(shift_acl(&new, 0x0008_0000), None, "nothing left to change");
        assert_eq!(shift_acl(&acl[..7], 0x0008_0000), None, "not an ACL");
    }

    #[test]
    fn file_capabilities_become_version_3_rooted_at_the_range() {
        let mut v2 = (0x0200_0000u32 | 1).to_le_bytes().to_vec();
        v2.extend([0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let v3 = shift_caps(&v2, 0x0008_0000).unwrap();
        assert_eq!(v3.len(), 24);
        assert_eq!(v3[..4], (0x0300_0000u32 | 1).to_le_bytes(), "effective flag kept");
        assert_eq!(v3[4..20], v2[4..20]);
        assert_eq!(v3[20..], 0x0008_0000u32.to_le_bytes());
        let again = shift_caps(&v3, 0x0009_0000).unwrap();
        assert_eq!(again[20..], 0x0009_0000u32.to_le_bytes());
        assert_eq!(shift_caps(&v2[..19], 1 << 16), None);
    }
}
