//! rtnetlink (netlink(7), rtnetlink(7)): the few requests that make a
//! machine's links, addresses and routes, written by hand. tend sends a few
//! kinds of message and reads three (ACKs, a link, a link's removal); a
//! general netlink crate parses every attribute of every message family
//! and costs the static binary far more than these few hundred lines (see
//! the README's networking section). [`linger`] leaves the kernel's slow
//! part of a machine's end to a child.
//!
//! Synchronous: each request asks for the kernel's ACK and waits for it on a
//! blocking socket; the kernel's errno comes back as the request's error.
//! A socket works in the network namespace it was opened in
//! ([`Socket::open_in`] opens one in another namespace).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{self as nixsock, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};

pub(super) const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
pub(super) const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
pub(super) const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_GATEWAY: u16 = 5;

const IFF_UP: u32 = 0x1;
const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

/// Bytes of `struct ifinfomsg`: family, pad, type, index, flags, change.
const IFINFOMSG_LEN: usize = 16;

/// A request being built: the netlink header, the family's header, then
/// attributes (nested ones closed in order). Lengths are filled in by
/// [`Request::finish`].
#[derive(Debug, Clone)]
pub struct Request {
    buf: Vec<u8>,
    nests: Vec<usize>,
    /// An attribute did not fit a u16 length: the request is refused.
    too_long: bool,
}

fn pad(buf: &mut Vec<u8>) {
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// `struct ifinfomsg` for link `index` (0: named by IFLA_IFNAME), setting
/// the `flags` bits of `change`.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut h = [0u8; IFINFOMSG_LEN];
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// A NUL-terminated string attribute value.
pub(super) fn cstr(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

impl Request {
    /// A request the kernel acknowledges.
    fn new(kind: u16, flags: u16, header: &[u8]) -> Request {
        Request::bare(kind, flags | NLM_F_ACK, header)
    }

    /// A message with exactly `flags` (and NLM_F_REQUEST), then `header`.
    pub(super) fn bare(kind: u16, flags: u16, header: &[u8]) -> Request {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(header);
        pad(&mut buf);
        Request {
            buf,
            nests: Vec::new(),
            too_long: false,
        }
    }

    pub(super) fn attr(mut self, kind: u16, value: &[u8]) -> Request {
        match u16::try_from(value.len() + 4) {
            Ok(len) => {
                self.buf.extend_from_slice(&len.to_ne_bytes());
                self.buf.extend_from_slice(&kind.to_ne_bytes());
                self.buf.extend_from_slice(value);
                pad(&mut self.buf);
            }
            Err(_) => self.too_long = true,
        }
        self
    }

    /// Opens a nested attribute, closed by [`Request::end`].
    pub(super) fn nest(mut self, kind: u16) -> Request {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0; 2]);
        self.buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    /// Raw bytes inside the open nest (a header of another message).
    fn raw(mut self, bytes: &[u8]) -> Request {
        self.buf.extend_from_slice(bytes);
        pad(&mut self.buf);
        self
    }

    pub(super) fn end(mut self) -> Request {
        if let Some(start) = self.nests.pop() {
            match u16::try_from(self.buf.len() - start) {
                Ok(len) => self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes()),
                Err(_) => self.too_long = true,
            }
        }
        self
    }

    /// The message with its length and sequence number set.
    pub fn finish(mut self, seq: u32) -> io::Result<Vec<u8>> {
        let len = u32::try_from(self.buf.len()).map_err(|_| io::Error::from_raw_os_error(libc::EMSGSIZE))?;
        if self.too_long || !self.nests.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        Ok(self.buf)
    }
}

/// `ip link add NAME type veth peer name PEER netns NS`: the peer is made
/// straight in the namespace of the descriptor `netns`.
pub fn add_veth(name: &str, peer: &str, netns: i32) -> Request {
    Request::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfomsg(0, 0, 0))
        .attr(IFLA_IFNAME, &cstr(name))
        .nest(IFLA_LINKINFO)
        .attr(IFLA_INFO_KIND, &cstr("veth"))
        .nest(IFLA_INFO_DATA)
        .nest(VETH_INFO_PEER)
        .raw(&ifinfomsg(0, 0, 0))
        .attr(IFLA_IFNAME, &cstr(peer))
        .attr(IFLA_NET_NS_FD, &netns.to_ne_bytes())
        .end()
        .end()
        .end()
}

/// `ip link add NAME type bridge`.
pub fn add_bridge(name: &str) -> Request {
    Request::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfomsg(0, 0, 0))
        .attr(IFLA_IFNAME, &cstr(name))
        .nest(IFLA_LINKINFO)
        .attr(IFLA_INFO_KIND, &cstr("bridge"))
        .end()
}

/// `ip link del NAME`.
pub fn delete_link(name: &str) -> Request {
    Request::new(RTM_DELLINK, 0, &ifinfomsg(0, 0, 0)).attr(IFLA_IFNAME, &cstr(name))
}

/// `ip link set NAME up`.
pub fn set_up(name: &str) -> Request {
    Request::new(RTM_SETLINK, 0, &ifinfomsg(0, IFF_UP, IFF_UP)).attr(IFLA_IFNAME, &cstr(name))
}

/// `ip link del` of the link with index `index`.
pub fn delete_index(index: u32) -> Request {
    Request::new(RTM_DELLINK, 0, &ifinfomsg(index, 0, 0))
}

/// `ip link set NAME master BRIDGE`, the bridge by its index.
pub fn set_master(name: &str, bridge: u32) -> Request {
    Request::new(RTM_SETLINK, 0, &ifinfomsg(0, 0, 0))
        .attr(IFLA_IFNAME, &cstr(name))
        .attr(IFLA_MASTER, &bridge.to_ne_bytes())
}

/// `ip addr add ADDR/PREFIX dev INDEX`.
pub fn add_address(index: u32, addr: Ipv4Addr, prefix: u8) -> Request {
    let mut h = [0u8; 8];
    h[0] = AF_INET;
    h[1] = prefix;
    h[3] = RT_SCOPE_UNIVERSE;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    Request::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &h)
        .attr(IFA_LOCAL, &addr.octets())
        .attr(IFA_ADDRESS, &addr.octets())
}

/// `ip route add default via GATEWAY`.
pub fn add_default_route(gateway: Ipv4Addr) -> Request {
    // family, dst_len, src_len, tos, table, protocol, scope, type; flags.
    let h = [
        AF_INET,
        0,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ];
    Request::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &h).attr(RTA_GATEWAY, &gateway.octets())
}

/// `ip link show` of the link with index `index`.
pub fn get_index(index: u32) -> Request {
    Request::new(RTM_GETLINK, 0, &ifinfomsg(index, 0, 0))
}

/// Whether a datagram of link events tells of link `index`'s removal:
/// an RTM_DELLINK of family AF_UNSPEC (a bridge's of family AF_BRIDGE
/// tells only that the link left it as a port).
fn deleted(datagram: &[u8], index: u32) -> bool {
    let mut at = 0usize;
    while let (Some(len), Some(kind)) = (u32_at(datagram, at), u16_at(datagram, at + 4)) {
        let len = usize::try_from(len).unwrap_or(0);
        if len < NLMSG_HDRLEN {
            return false;
        }
        let family = datagram.get(at + NLMSG_HDRLEN).copied();
        if kind == RTM_DELLINK && family == Some(AF_UNSPEC) && u32_at(datagram, at + NLMSG_HDRLEN + 4) == Some(index) {
            return true;
        }
        at = at.saturating_add((len + 3) & !3);
    }
    false
}

/// `ip link show NAME`: answered by the link's RTM_NEWLINK.
pub fn get_link(name: &str) -> Request {
    Request::new(RTM_GETLINK, 0, &ifinfomsg(0, 0, 0)).attr(IFLA_IFNAME, &cstr(name))
}

/// A link as the kernel describes it: its index and kind (`IFLA_INFO_KIND`:
/// "veth", "bridge"; none for a plain device such as `lo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub kind: Option<String>,
}

/// What one datagram from the kernel says about request `seq`.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// The ACK (errno 0) or the error; the request is answered.
    Done(Result<(), i32>),
    /// A link (the answer to RTM_GETLINK, before its ACK).
    Link(Link),
}

pub(super) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

pub(super) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// The attributes of `b`: (type without flags, value), stopping at the
/// first that does not fit.
fn attrs(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(b, at)?);
        // Without NLA_F_NESTED and NLA_F_NET_BYTEORDER.
        let kind = u16_at(b, at + 2)? & 0x3fff;
        let value = b.get(at.checked_add(4)?..at.checked_add(len)?)?;
        at = at.checked_add(len.checked_add(3)? & !3)?;
        Some((kind, value))
    })
}

/// The link in an RTM_NEWLINK message's body (after the netlink header).
fn parse_link(body: &[u8]) -> Option<Link> {
    let index = u32_at(body, 4)?;
    let kind = attrs(body.get(IFINFOMSG_LEN..)?)
        .find(|(t, _)| *t == IFLA_LINKINFO)
        .and_then(|(_, info)| attrs(info).find(|(t, _)| *t == IFLA_INFO_KIND))
        .map(|(_, v)| {
            let name = v.split(|&c| c == 0).next().unwrap_or_default();
            String::from_utf8_lossy(name).into_owned()
        });
    Some(Link { index, kind })
}

/// Every NLMSG_ERROR of one datagram: the request it answers (its
/// sequence number) and its errno (0: the ACK).
pub(super) fn acks(datagram: &[u8]) -> Vec<(u32, i32)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let (Some(len), Some(kind), Some(seq)) =
        (u32_at(datagram, at), u16_at(datagram, at + 4), u32_at(datagram, at + 8))
    {
        let len = usize::try_from(len).unwrap_or(0);
        if len < NLMSG_HDRLEN || datagram.len() < at.saturating_add(len) {
            break;
        }
        if kind == NLMSG_ERROR {
            let code = u32_at(datagram, at + NLMSG_HDRLEN).map_or(-libc::EPROTO, |c| c as i32);
            out.push((seq, code.saturating_neg()));
        }
        at = at.saturating_add((len + 3) & !3);
    }
    out
}

/// The messages of one datagram that answer request `seq`.
fn answers(datagram: &[u8], seq: u32) -> Vec<Answer> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let (Some(len), Some(kind), Some(their_seq)) =
        (u32_at(datagram, at), u16_at(datagram, at + 4), u32_at(datagram, at + 8))
    {
        let len = usize::try_from(len).unwrap_or(0);
        let Some(body) = datagram.get(at + NLMSG_HDRLEN..at.saturating_add(len)) else {
            break;
        };
        if their_seq == seq {
            match kind {
                NLMSG_ERROR | NLMSG_DONE => {
                    let code = u32_at(body, 0).map_or(-libc::EPROTO, |c| c as i32);
                    out.push(Answer::Done(if code == 0 { Ok(()) } else { Err(-code) }));
                }
                RTM_NEWLINK => out.extend(parse_link(body).map(Answer::Link)),
                _ => {}
            }
        }
        // A zero or short length would never move on.
        if len < NLMSG_HDRLEN {
            break;
        }
        at = at.saturating_add((len + 3) & !3);
    }
    out
}

/// A NETLINK_ROUTE socket bound to the network namespace it was opened in.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

/// How long a request may wait for its answer: the kernel answers within
/// the send, so only a broken kernel would make this matter.
const ANSWER_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A NETLINK_ROUTE socket of multicast `groups`, each read waiting at
/// most `limit`.
fn route_socket(groups: u32, limit: std::time::Duration) -> io::Result<OwnedFd> {
    let fd = nixsock::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    nixsock::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
    nixsock::connect(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    let limit = nix::sys::time::TimeVal::new(
        i64::try_from(limit.as_secs()).unwrap_or(1),
        i64::from(limit.subsec_micros()),
    );
    nixsock::setsockopt(&fd, nixsock::sockopt::ReceiveTimeout, &limit)?;
    Ok(fd)
}

/// A read that timed out is ETIMEDOUT, not EAGAIN.
fn timed_out(e: nix::errno::Errno) -> io::Error {
    match e {
        nix::errno::Errno::EAGAIN => io::Error::from_raw_os_error(libc::ETIMEDOUT),
        e => e.into(),
    }
}

impl Socket {
    /// A socket in this thread's network namespace.
    pub fn open() -> io::Result<Socket> {
        let fd = route_socket(0, ANSWER_LIMIT)?;
        Ok(Socket { fd, seq: 0 })
    }

    /// A socket that hears of links added and removed (RTMGRP_LINK), each
    /// read waiting at most `limit`.
    fn listen_links(limit: std::time::Duration) -> io::Result<Socket> {
        let fd = route_socket(1, limit)?;
        Ok(Socket { fd, seq: 0 })
    }

    /// Until the kernel tells of the removal of every link of `indices`
    /// (or they are gone already); ETIMEDOUT past the socket's limit.
    fn await_deleted(&mut self, indices: &[u32]) -> io::Result<()> {
        let mut probe = Socket::open()?;
        let mut left: Vec<u32> = indices.to_vec();
        let mut ask = |left: &mut Vec<u32>| {
            left.retain(
                |&index| !matches!(probe.call(get_index(index)), Err(e) if e.raw_os_error() == Some(libc::ENODEV)),
            )
        };
        ask(&mut left);
        let mut buf = vec![0u8; 32 * 1024];
        while !left.is_empty() {
            let n = match nixsock::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                // Events were lost: ask instead.
                Err(nix::errno::Errno::ENOBUFS) => {
                    ask(&mut left);
                    continue;
                }
                Err(e) => return Err(timed_out(e)),
            };
            let got = buf.get(..n).unwrap_or_default();
            left.retain(|&index| !deleted(got, index));
        }
        Ok(())
    }

    /// A socket in the network namespace `netns`: this thread steps in,
    /// opens it and steps back (the socket stays with that namespace).
    pub fn open_in(netns: impl AsFd) -> io::Result<Socket> {
        let home = super::ns::open_ns_file(std::path::Path::new("/proc/thread-self/ns/net"))?;
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let socket = Socket::open();
        // Back home, whatever happened: everything after runs on the host.
        // Root may always re-enter the namespace it came from.
        nix::sched::setns(&home, nix::sched::CloneFlags::CLONE_NEWNET)?;
        socket
    }

    /// Sends `request` and waits for its answer: the link it asked for, if
    /// any, or the kernel's error.
    pub fn call(&mut self, request: Request) -> io::Result<Option<Link>> {
        self.seq = self.seq.wrapping_add(1);
        let bytes = request.finish(self.seq)?;
        nixsock::send(self.fd.as_raw_fd(), &bytes, MsgFlags::empty())?;
        let mut link = None;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = nixsock::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_TRUNC).map_err(timed_out)?;
            let got = buf
                .get(..n)
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EMSGSIZE))?;
            for answer in answers(got, self.seq) {
                match answer {
                    Answer::Link(l) => link = Some(l),
                    Answer::Done(Ok(())) => return Ok(link),
                    Answer::Done(Err(errno)) => return Err(io::Error::from_raw_os_error(errno)),
                }
            }
        }
    }

    /// Link `name`, or `None` when there is none.
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        match self.call(get_link(name)) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            other => other,
        }
    }

    /// The index of link `name` (ENODEV when there is none).
    pub fn index(&mut self, name: &str) -> io::Result<u32> {
        self.link(name)?
            .map(|l| l.index)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }
}

/// Leaves to a child what would make this process wait for an RCU grace
/// period in the kernel (several milliseconds, more under load): deleting
/// link `delete`, then the links of `also` (unregistering a device waits
/// for one after it is gone from view), and the last close of `keep`
/// (closing an nf_tables socket after a transaction waits for its
/// release). Returns once the links are gone from this namespace (the
/// kernel's RTM_DELLINK, at most `limit` later); the child goes on until
/// its waits are over, and nobody waits for it.
pub fn linger(delete: Option<u32>, also: &[u32], keep: Vec<OwnedFd>, limit: std::time::Duration) -> io::Result<()> {
    if delete.is_none() && also.is_empty() && keep.is_empty() {
        return Ok(());
    }
    let lingering = Lingering::start(delete, &keep.iter().collect::<Vec<_>>())?;
    drop(keep);
    lingering.finish(also, limit)
}

/// At most this many links are handed to a lingering child at its end
/// (the bridges its machine was the last on): more are deleted in place.
pub const LINGER_MORE: usize = 8;

/// Sets the link index of a finished RTM_DELLINK request.
fn set_index(request: &mut [u8], index: u32) {
    if let Some(field) = request.get_mut(NLMSG_HDRLEN + 4..NLMSG_HDRLEN + 8) {
        field.copy_from_slice(&index.to_ne_bytes());
    }
}

/// The child of [`linger`], started early (forking costs the end nothing
/// then): it holds its copies of the descriptors it was given and waits,
/// in a session of its own (a terminal's signals are not for it), until
/// [`Lingering::finish`] or this process's end lets it go.
#[derive(Debug)]
pub struct Lingering {
    go: OwnedFd,
    delete: Option<u32>,
}

impl Lingering {
    pub fn start(delete: Option<u32>, keep: &[&OwnedFd]) -> io::Result<Lingering> {
        // Made here: the child only fills in an index and sends.
        let socket = Socket::open()?;
        let mut request = delete_index(0).finish(1)?;
        let (go_r, go_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let mut mine: Vec<i32> = keep.iter().map(|fd| fd.as_raw_fd()).collect();
        mine.push(go_r.as_raw_fd());
        mine.push(socket.fd.as_raw_fd());
        crate::sorted::sort(&mut mine);
        match super::ns::clone_into(0)? {
            super::ns::Forked::Child => {
                // Only async-signal-safe calls from here: none of the
                // parent's descriptors (its locks, its output) stay open
                // here, signals as by default, then wait for the word.
                let _ = nix::unistd::setsid();
                close_all_but(&mine);
                for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGCHLD] {
                    // SAFETY: signal(2) with SIG_DFL installs no code of ours.
                    unsafe { libc::signal(signal, libc::SIG_DFL) };
                }
                // The word: the indices of more links to delete, then the
                // end of the pipe (or the launcher's end).
                let mut more = [0u8; 4 * LINGER_MORE];
                let mut got = 0;
                while let Some(free) = more.get_mut(got..).filter(|f| !f.is_empty()) {
                    match nix::unistd::read(&go_r, free) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                let also = more.get(..got).unwrap_or_default().chunks_exact(4);
                let all = delete
                    .into_iter()
                    .chain(also.filter_map(|c| Some(u32::from_ne_bytes(c.try_into().ok()?))));
                let mut indices = [0u32; 1 + LINGER_MORE];
                let mut count = 0;
                for (slot, index) in indices.iter_mut().zip(all) {
                    *slot = index;
                    count += 1;
                }
                for (n, &index) in indices.iter().take(count).enumerate() {
                    // All but the last in a process of their own: a
                    // deletion waits for the kernel long after its link is
                    // gone from view, and the next need not wait for it.
                    let forked = (n + 1 < count).then(|| super::ns::clone_into(0).ok()).flatten();
                    if let Some(super::ns::Forked::Parent { .. }) = forked {
                        continue;
                    }
                    set_index(&mut request, index);
                    let _ = nixsock::send(socket.fd.as_raw_fd(), &request, MsgFlags::empty());
                    if let Some(super::ns::Forked::Child) = forked {
                        // SAFETY: as below.
                        unsafe { libc::_exit(0) }
                    }
                }
                // SAFETY: _exit takes an integer and never returns; the
                // kernel closes what is left, the last of `keep` among them.
                unsafe { libc::_exit(0) }
            }
            super::ns::Forked::Parent { .. } => Ok(Lingering { go: go_w, delete }),
        }
    }

    /// Lets the child go (close this process's copies of what it keeps
    /// first), with the links of `also` to delete after its own (the first
    /// [`LINGER_MORE`]; the caller deletes any more), and returns once
    /// they are all gone from view.
    pub fn finish(self, also: &[u32], limit: std::time::Duration) -> io::Result<()> {
        let also = also.get(..LINGER_MORE).unwrap_or(also);
        let gone: Vec<u32> = self.delete.into_iter().chain(also.iter().copied()).collect();
        // Listening before the child deletes: the event cannot be missed.
        let watch = match gone.is_empty() {
            false => Some(Socket::listen_links(limit)?),
            true => None,
        };
        let word: Vec<u8> = also.iter().flat_map(|i| i.to_ne_bytes()).collect();
        if !word.is_empty() {
            // A pipe takes these few bytes at once (PIPE_BUF).
            nix::unistd::write(&self.go, &word)?;
        }
        drop(self.go);
        match watch {
            Some(mut socket) => socket.await_deleted(&gone),
            None => Ok(()),
        }
    }
}

/// Closes every descriptor but `keep` (sorted).
fn close_all_but(keep: &[i32]) {
    let mut first = 0u32;
    for &fd in keep {
        let Ok(fd) = u32::try_from(fd) else { continue };
        if fd > first {
            // SAFETY: close_range takes integers; it closes only descriptors.
            unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0u32) };
        }
        first = fd.saturating_add(1);
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attributes of a finished request, after its family header.
    fn body(bytes: &[u8], header: usize) -> Vec<(u16, Vec<u8>)> {
        attrs(&bytes[NLMSG_HDRLEN + header..])
            .map(|(t, v)| (t, v.to_vec()))
            .collect()
    }

    #[test]
    fn a_veth_request_nests_its_peer_in_the_other_namespace() {
        let bytes = add_veth("ve-web", "host0", 7).finish(9).unwrap();
        assert_eq!(u32_at(&bytes, 0), Some(bytes.len() as u32));
        assert_eq!(u16_at(&bytes, 4), Some(RTM_NEWLINK));
        assert_eq!(
            u16_at(&bytes, 6),
            Some(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
        );
        assert_eq!(u32_at(&bytes, 8), Some(9));
        assert_eq!(bytes.len() % 4, 0);
        let top = body(&bytes, IFINFOMSG_LEN);
        assert_eq!(top[0], (IFLA_IFNAME, b"ve-web\0".to_vec()));
        assert_eq!(top[1].0, IFLA_LINKINFO);
        let info: Vec<_> = attrs(&top[1].1).collect();
        assert_eq!(info[0], (IFLA_INFO_KIND, &b"veth\0"[..]));
        let data: Vec<_> = attrs(info[1].1).collect();
        assert_eq!(data[0].0, VETH_INFO_PEER);
        let peer = data[0].1;
        assert_eq!(&peer[..IFINFOMSG_LEN], &[0; IFINFOMSG_LEN]);
        let peer: Vec<_> = attrs(&peer[IFINFOMSG_LEN..]).collect();
        assert_eq!(
            peer,
            [
                (IFLA_IFNAME, &b"host0\0"[..]),
                (IFLA_NET_NS_FD, &7i32.to_ne_bytes()[..])
            ]
        );
        // The nested length covers exactly its padded children.
        assert_eq!(
            usize::from(u16_at(&bytes, NLMSG_HDRLEN + IFINFOMSG_LEN + 12).unwrap()),
            top[1].1.len() + 4
        );
    }

    #[test]
    fn addresses_routes_and_link_changes_encode_their_fields() {
        let bytes = add_address(5, Ipv4Addr::new(10, 231, 0, 5), 30).finish(1).unwrap();
        assert_eq!(&bytes[NLMSG_HDRLEN..NLMSG_HDRLEN + 8], &[AF_INET, 30, 0, 0, 5, 0, 0, 0]);
        assert_eq!(
            body(&bytes, 8),
            [(IFA_LOCAL, vec![10, 231, 0, 5]), (IFA_ADDRESS, vec![10, 231, 0, 5])]
        );
        let bytes = add_default_route(Ipv4Addr::new(10, 231, 0, 1)).finish(1).unwrap();
        assert_eq!(bytes[NLMSG_HDRLEN + 4], RT_TABLE_MAIN);
        assert_eq!(body(&bytes, 12), [(RTA_GATEWAY, vec![10, 231, 0, 1])]);
        let bytes = set_up("host0").finish(1).unwrap();
        assert_eq!(u16_at(&bytes, 4), Some(RTM_SETLINK));
        assert_eq!(u32_at(&bytes, NLMSG_HDRLEN + 8), Some(IFF_UP));
        assert_eq!(u32_at(&bytes, NLMSG_HDRLEN + 12), Some(IFF_UP));
        let bytes = set_master("ve-a", 4).finish(1).unwrap();
        assert_eq!(
            body(&bytes, IFINFOMSG_LEN)[1],
            (IFLA_MASTER, 4u32.to_ne_bytes().to_vec())
        );
        let long = "x".repeat(70_000);
        assert!(delete_link(&long).finish(1).is_err(), "a length beyond u16 is refused");
    }

    fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 2]);
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(body);
        pad(&mut m);
        m
    }

    #[test]
    fn a_lingering_deletion_takes_its_index_in_place() {
        let mut request = delete_index(0).finish(1).unwrap();
        set_index(&mut request, 42);
        assert_eq!(request, delete_index(42).finish(1).unwrap());
        set_index(&mut request[..20], 7);
        assert_eq!(
            request,
            delete_index(42).finish(1).unwrap(),
            "a short buffer is left alone"
        );
    }

    #[test]
    fn a_link_event_tells_which_link_went() {
        let gone = Request::bare(RTM_DELLINK, 0, &ifinfomsg(9, 0, 0)).finish(0).unwrap();
        let added = Request::bare(RTM_NEWLINK, 0, &ifinfomsg(9, 0, 0)).finish(0).unwrap();
        let mut both = added.clone();
        both.extend_from_slice(&gone);
        assert!(deleted(&both, 9));
        assert!(!deleted(&both, 8) && !deleted(&added, 9));
        assert!(!deleted(&gone[..20], 9), "cut short");
        // A bridge tells of each port it loses (its own RTM_DELLINK, of
        // family AF_BRIDGE): the port is still there.
        let mut port = ifinfomsg(9, 0, 0);
        port[0] = 7; // AF_BRIDGE
        let unplugged = Request::bare(RTM_DELLINK, 0, &port).finish(0).unwrap();
        assert!(!deleted(&unplugged, 9));
        let mut then_gone = unplugged.clone();
        then_gone.extend_from_slice(&gone);
        assert!(deleted(&then_gone, 9));
    }

    #[test]
    fn answers_parse_acks_errors_and_links_within_bounds() {
        let ack = message(NLMSG_ERROR, 3, &0i32.to_ne_bytes());
        assert_eq!(answers(&ack, 3), [Answer::Done(Ok(()))]);
        assert_eq!(answers(&ack, 4), [], "another request's answer");
        let eexist = message(NLMSG_ERROR, 3, &(-libc::EEXIST).to_ne_bytes());
        assert_eq!(answers(&eexist, 3), [Answer::Done(Err(libc::EEXIST))]);
        // A bridge: ifinfomsg with index 6, IFLA_IFNAME, IFLA_LINKINFO{KIND}.
        let link = Request::new(RTM_NEWLINK, 0, &ifinfomsg(6, 0, 0))
            .attr(IFLA_IFNAME, b"tend0\0")
            .nest(IFLA_LINKINFO)
            .attr(IFLA_INFO_KIND, b"bridge\0")
            .end()
            .finish(3)
            .unwrap();
        let mut datagram = link.clone();
        datagram.extend_from_slice(&ack);
        let bridge = Link {
            index: 6,
            kind: Some("bridge".into()),
        };
        assert_eq!(answers(&datagram, 3), [Answer::Link(bridge), Answer::Done(Ok(()))]);
        // Truncated or lying lengths end the walk; nothing reads past.
        for cut in 0..datagram.len() {
            let _ = answers(&datagram[..cut], 3);
        }
        let mut liar = link;
        liar[NLMSG_HDRLEN + IFINFOMSG_LEN] = 0xff;
        liar[NLMSG_HDRLEN + IFINFOMSG_LEN + 1] = 0xff;
        assert_eq!(answers(&liar, 3), [Answer::Link(Link { index: 6, kind: None })]);
        assert!(answers(&[0u8; 32], 0).is_empty(), "a zero length is no message");
        // A batch's answers: every ACK and error with its request.
        let mut batch = message(NLMSG_ERROR, 1, &0i32.to_ne_bytes());
        batch.extend(message(NLMSG_ERROR, 2, &(-libc::ENOENT).to_ne_bytes()));
        assert_eq!(acks(&batch), [(1, 0), (2, libc::ENOENT)]);
        assert_eq!(acks(&batch[..batch.len() - 1]), [(1, 0)], "a cut message is dropped");
    }
}
