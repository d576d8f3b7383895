//! Unix socket plumbing for the control socket: file descriptors passed
//! with `SCM_RIGHTS`, and the peer's credentials.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    getsockopt, recvmsg, sendmsg, sockopt::PeerCredentials, ControlMessage, ControlMessageOwned, MsgFlags,
};

/// Most fds accepted in one message; more are discarded by the kernel
/// (the control buffer only has room for these).
pub const MAX_FDS: usize = 4;

/// Sends `bytes` with `fds` attached; returns how many bytes went out.
/// Never raises SIGPIPE; fails with `WouldBlock` on a full non-blocking socket.
pub fn send(socket: impl AsFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    let iov = [IoSlice::new(bytes)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
    sendmsg::<()>(socket.as_fd().as_raw_fd(), &iov, cmsgs, flags, None).map_err(io::Error::from)
}

/// Receives into `buf`; fds that came along are appended to `fds`, already
/// close-on-exec (`MSG_CMSG_CLOEXEC`), so no child inherits them by accident.
/// `Ok(0)` is the end of the stream.
pub fn recv(socket: impl AsFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>, nonblocking: bool) -> io::Result<usize> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if nonblocking {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let msg = recvmsg::<()>(socket.as_fd().as_raw_fd(), &mut iov, Some(&mut space), flags).map_err(io::Error::from)?;
    let n = msg.bytes;
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            for fd in raw {
                // SAFETY: the kernel just installed `fd` in our table for this
                // message; nothing else refers to it, so we take ownership.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Ok(n)
}

/// Who is at the other end of a connected Unix socket, as of its `connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// 0 when the peer is in a PID namespace we cannot see.
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (empty when the kernel cannot tell).
    pub groups: Vec<u32>,
}

pub fn peer(socket: impl AsFd) -> io::Result<Peer> {
    let creds = getsockopt(&socket, PeerCredentials).map_err(io::Error::from)?;
    Ok(Peer {
        pid: creds.pid(),
        uid: creds.uid(),
        gid: creds.gid(),
        groups: peer_groups(socket.as_fd().as_raw_fd()).unwrap_or_default(),
    })
}

/// `SO_PEERGROUPS` (Linux 4.13): the peer's supplementary groups.
fn peer_groups(fd: RawFd) -> io::Result<Vec<u32>> {
    let mut groups = vec![0u32; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<u32>()) as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `groups`, which
        // is that large, and stores the needed size in `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let count = len as usize / std::mem::size_of::<u32>();
        if rc == 0 {
            groups.truncate(count);
            return Ok(groups);
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ERANGE) || count <= groups.len() {
            return Err(error);
        }
        groups.resize(count, 0);
    }
}
