//! nf_tables over netlink (NETLINK_NETFILTER): one batch that makes a
//! table anew, or removes it, written by hand like [`super::netlink`]. A
//! batch is one transaction: the kernel applies all of it or nothing.
//!
//! Only the expressions tend's rules use are here: load a field into
//! register 1 (meta, payload, ct, fib), mask it, compare it, and a verdict,
//! masquerade or DNAT. Values are as the kernel keeps them in registers:
//! packet bytes in network order, meta/ct/fib words in host order.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{self as nixsock, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};

use super::netlink::{acks, cstr, Request, NLM_F_ACK, NLM_F_CREATE};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NLM_F_APPEND: u16 = 0x800;

const NFPROTO_INET: u8 = 1;
pub const NFPROTO_IPV4: u8 = 2;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;

/// Registers: 0 holds the verdict; 1 and 2 are 16-byte data registers.
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
const REG_2: u32 = 2;

const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

/// Hooks of the inet family.
pub const HOOK_PREROUTING: u32 = 0;
pub const HOOK_FORWARD: u32 = 2;
pub const HOOK_OUTPUT: u32 = 3;
pub const HOOK_POSTROUTING: u32 = 4;

/// `meta` keys.
pub const META_IIFNAME: u32 = 6;
pub const META_OIFNAME: u32 = 7;
pub const META_NFPROTO: u32 = 15;
pub const META_L4PROTO: u32 = 16;
/// `ct` keys.
pub const CT_STATE: u32 = 0;
pub const CT_STATUS: u32 = 2;
/// Payload bases.
pub const NETWORK_HEADER: u32 = 1;
pub const TRANSPORT_HEADER: u32 = 2;

/// One expression of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Register 1 = the meta field `key`.
    Meta(u32),
    /// Register 1 = `len` bytes at `offset` of header `base`.
    Payload {
        base: u32,
        offset: u32,
        len: u32,
    },
    /// Register 1 = the conntrack field `key`.
    Ct(u32),
    /// Register 1 = the address type of the destination (RTN_*).
    FibDaddrType,
    /// Register 1 &= the mask (its length is the field's).
    Mask(Vec<u8>),
    /// Go on only if register 1 equals (or, `eq` false, differs from) `data`.
    Cmp {
        eq: bool,
        data: Vec<u8>,
    },
    Accept,
    Drop,
    Masquerade,
    /// Destination NAT to the IPv4 address and port.
    Dnat(Ipv4Addr, u16),
}

/// A base chain of the table, with its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub hook: u32,
    pub priority: i32,
    /// A nat chain (else a filter one).
    pub nat: bool,
    pub rules: Vec<Vec<Expr>>,
}

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// An nftables message of `family`: `nfgenmsg` (family, version 0,
/// resource id 0) before the attributes.
fn message(cmd: u16, flags: u16, family: u8) -> Request {
    Request::bare((NFNL_SUBSYS_NFTABLES << 8) | cmd, flags | NLM_F_ACK, &[family, 0, 0, 0])
}

fn data(r: Request, kind: u16, value: &[u8]) -> Request {
    r.nest(kind).attr(NFTA_DATA_VALUE, value).end()
}

fn verdict(r: Request, code: u32) -> Request {
    let r = r.attr(1, &be32(REG_VERDICT)).nest(2).nest(NFTA_DATA_VERDICT);
    r.attr(NFTA_VERDICT_CODE, &be32(code)).end().end()
}

/// One expression as `NFTA_LIST_ELEM { NAME, DATA { ... } }`.
fn expr(r: Request, e: &Expr) -> Request {
    let (name, r) = match e {
        Expr::Dnat(addr, port) => {
            // Two immediates load the address and port for the nat one.
            let r = immediate(r, REG_1, &addr.octets());
            let r = immediate(r, REG_2, &port.to_be_bytes());
            ("nat", r)
        }
        Expr::Meta(_) => ("meta", r),
        Expr::Payload { .. } => ("payload", r),
        Expr::Ct(_) => ("ct", r),
        Expr::FibDaddrType => ("fib", r),
        Expr::Mask(_) => ("bitwise", r),
        Expr::Cmp { .. } => ("cmp", r),
        Expr::Accept | Expr::Drop => ("immediate", r),
        Expr::Masquerade => ("masq", r),
    };
    let r = r
        .nest(NFTA_LIST_ELEM)
        .attr(NFTA_EXPR_NAME, &cstr(name))
        .nest(NFTA_EXPR_DATA);
    let r = match e {
        // meta and ct: DREG 1, KEY 2.
        Expr::Meta(key) => r.attr(1, &be32(REG_1)).attr(2, &be32(*key)),
        Expr::Ct(key) => r.attr(1, &be32(REG_1)).attr(2, &be32(*key)),
        // DREG, BASE, OFFSET, LEN.
        Expr::Payload { base, offset, len } => r
            .attr(1, &be32(REG_1))
            .attr(2, &be32(*base))
            .attr(3, &be32(*offset))
            .attr(4, &be32(*len)),
        // DREG, RESULT (3: address type), FLAGS (2: of the destination).
        Expr::FibDaddrType => r.attr(1, &be32(REG_1)).attr(2, &be32(3)).attr(3, &be32(2)),
        // SREG, DREG, LEN, MASK, XOR.
        Expr::Mask(mask) => {
            let len = u32::try_from(mask.len()).unwrap_or(u32::MAX);
            let r = r.attr(1, &be32(REG_1)).attr(2, &be32(REG_1)).attr(3, &be32(len));
            data(data(r, 4, mask), 5, &vec![0; mask.len()])
        }
        // SREG, OP (0 eq, 1 neq), DATA.
        Expr::Cmp { eq, data: value } => {
            let r = r.attr(1, &be32(REG_1)).attr(2, &be32(u32::from(!eq)));
            data(r, 3, value)
        }
        Expr::Accept => verdict(r, NF_ACCEPT),
        Expr::Drop => verdict(r, NF_DROP),
        Expr::Masquerade => r,
        // TYPE (1: dnat), FAMILY, REG_ADDR_MIN, REG_PROTO_MIN.
        Expr::Dnat(..) => r
            .attr(1, &be32(1))
            .attr(2, &be32(u32::from(NFPROTO_IPV4)))
            .attr(3, &be32(REG_1))
            .attr(5, &be32(REG_2)),
    };
    r.end().end()
}

/// `immediate`: register `reg` = `value`.
fn immediate(r: Request, reg: u32, value: &[u8]) -> Request {
    let r = r
        .nest(NFTA_LIST_ELEM)
        .attr(NFTA_EXPR_NAME, &cstr("immediate"))
        .nest(NFTA_EXPR_DATA);
    data(r.attr(1, &be32(reg)), 2, value).end().end()
}

/// The messages that replace table `name` of the inet family with
/// `chains`: created first (so that the delete cannot fail), deleted, and
/// made anew. With no chains the table is only removed.
pub fn replace_table(name: &str, chains: &[Chain]) -> Vec<Request> {
    let table = |cmd, flags| message(cmd, flags, NFPROTO_INET).attr(NFTA_TABLE_NAME, &cstr(name));
    let mut batch = vec![table(NFT_MSG_NEWTABLE, NLM_F_CREATE), table(NFT_MSG_DELTABLE, 0)];
    if chains.is_empty() {
        return batch;
    }
    batch.push(table(NFT_MSG_NEWTABLE, NLM_F_CREATE));
    for chain in chains {
        let hook = message(NFT_MSG_NEWCHAIN, NLM_F_CREATE, NFPROTO_INET)
            .attr(NFTA_CHAIN_TABLE, &cstr(name))
            .attr(NFTA_CHAIN_NAME, &cstr(&chain.name))
            .nest(NFTA_CHAIN_HOOK)
            .attr(NFTA_HOOK_HOOKNUM, &be32(chain.hook))
            .attr(NFTA_HOOK_PRIORITY, &chain.priority.to_be_bytes())
            .end()
            .attr(NFTA_CHAIN_POLICY, &be32(NF_ACCEPT))
            .attr(NFTA_CHAIN_TYPE, &cstr(if chain.nat { "nat" } else { "filter" }));
        batch.push(hook);
        for rule in &chain.rules {
            let r = message(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, NFPROTO_INET)
                .attr(NFTA_RULE_TABLE, &cstr(name))
                .attr(NFTA_RULE_CHAIN, &cstr(&chain.name))
                .nest(NFTA_RULE_EXPRESSIONS);
            batch.push(rule.iter().fold(r, expr).end());
        }
    }
    batch
}

/// The batch as one datagram: its messages between BATCH_BEGIN and
/// BATCH_END, numbered from `seq`.
pub fn frame(batch: Vec<Request>, seq: u32) -> io::Result<Vec<u8>> {
    // Resource id: the nftables subsystem, in network order.
    let marker = |kind| Request::bare(kind, 0, &[0, 0, 0, NFNL_SUBSYS_NFTABLES as u8]);
    let mut out = Vec::new();
    let all = std::iter::once(marker(NFNL_MSG_BATCH_BEGIN))
        .chain(batch)
        .chain(std::iter::once(marker(NFNL_MSG_BATCH_END)));
    for (n, message) in all.enumerate() {
        let n = u32::try_from(n).map_err(|_| io::Error::from_raw_os_error(libc::EMSGSIZE))?;
        out.extend(message.finish(seq.wrapping_add(n))?);
    }
    Ok(out)
}

/// A NETLINK_NETFILTER socket of this network namespace.
///
/// Closing it right after a transaction waits for the kernel to release
/// the transaction (an RCU grace period): keep it, and hand it to
/// [`super::netlink::linger`] in the end.
pub fn open() -> io::Result<OwnedFd> {
    let fd = nixsock::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )?;
    nixsock::connect(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    Ok(fd)
}

/// Sends `batch` on `fd` (see [`open`]) as one transaction. The kernel
/// handles the batch within the send, so its answers (an ACK or error per
/// message) are all queued once the send returns.
pub fn send(fd: &OwnedFd, batch: Vec<Request>) -> io::Result<()> {
    let count = u32::try_from(batch.len()).map_err(|_| io::Error::from_raw_os_error(libc::EMSGSIZE))?;
    let bytes = frame(batch, 0)?;
    nixsock::send(fd.as_raw_fd(), &bytes, MsgFlags::empty())?;
    let mut answered = 0u32;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match nixsock::recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN) => break,
            Err(e) => return Err(e.into()),
        };
        for (_, errno) in acks(buf.get(..n).unwrap_or_default()) {
            if errno != 0 {
                return Err(io::Error::from_raw_os_error(errno));
            }
            answered += 1;
        }
    }
    // Every message acknowledged, else the kernel did not take the batch.
    if answered < count {
        return Err(io::Error::from_raw_os_error(libc::EPROTO));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::netlink::{u16_at, u32_at, NLMSG_HDRLEN};
    use super::*;

    /// (type, flags, seq) of each message of a datagram.
    fn headers(bytes: &[u8]) -> Vec<(u16, u16, u32)> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(len) = u32_at(bytes, at) {
            out.push((
                u16_at(bytes, at + 4).unwrap(),
                u16_at(bytes, at + 6).unwrap(),
                u32_at(bytes, at + 8).unwrap(),
            ));
            at += len as usize;
        }
        assert_eq!(at, bytes.len(), "the lengths cover the datagram");
        out
    }

    fn find(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_batch_replaces_the_table_between_begin_and_end() {
        let chain = Chain {
            name: "postrouting".into(),
            hook: HOOK_POSTROUTING,
            priority: 100,
            nat: true,
            rules: vec![vec![
                Expr::Meta(META_NFPROTO),
                Expr::Cmp {
                    eq: true,
                    data: vec![NFPROTO_IPV4],
                },
                Expr::Masquerade,
            ]],
        };
        let bytes = frame(replace_table("tend", &[chain]), 5).unwrap();
        let sub = |cmd: u16| (NFNL_SUBSYS_NFTABLES << 8) | cmd;
        let h = headers(&bytes);
        let kinds: Vec<u16> = h.iter().map(|x| x.0).collect();
        assert_eq!(
            kinds,
            [
                NFNL_MSG_BATCH_BEGIN,
                sub(NFT_MSG_NEWTABLE),
                sub(NFT_MSG_DELTABLE),
                sub(NFT_MSG_NEWTABLE),
                sub(NFT_MSG_NEWCHAIN),
                sub(NFT_MSG_NEWRULE),
                NFNL_MSG_BATCH_END
            ]
        );
        let seqs: Vec<u32> = h.iter().map(|x| x.2).collect();
        assert_eq!(seqs, [5, 6, 7, 8, 9, 10, 11]);
        // The markers ask for no ACK and name the subsystem; the rest do.
        assert_eq!(h[0].1 & NLM_F_ACK, 0);
        assert_eq!(&bytes[NLMSG_HDRLEN..NLMSG_HDRLEN + 4], &[0, 0, 0, 10]);
        assert!(h[1..6].iter().all(|x| x.1 & NLM_F_ACK != 0));
        assert_eq!(h[5].1 & (NLM_F_CREATE | NLM_F_APPEND), NLM_F_CREATE | NLM_F_APPEND);
        // Priorities and numbers in network order; names with their NUL.
        assert!(find(&bytes, &100i32.to_be_bytes()));
        assert!(find(&bytes, b"masq\0"));
        assert!(find(&bytes, b"nat\0"));
        assert_eq!(
            frame(replace_table("tend", &[]), 0).map(|b| headers(&b).len()).unwrap(),
            4
        );
    }

    #[test]
    fn dnat_loads_address_and_port_before_the_nat_expression() {
        let r = Request::bare(0, 0, &[]);
        let bytes = expr(r, &Expr::Dnat(Ipv4Addr::new(10, 231, 0, 6), 80))
            .finish(0)
            .unwrap();
        let immediate = bytes.windows(10).position(|w| w == b"immediate\0").unwrap();
        let nat = bytes.windows(4).position(|w| w == b"nat\0").unwrap();
        assert!(immediate < nat);
        assert!(find(&bytes, &[10, 231, 0, 6]));
        assert!(find(&bytes, &80u16.to_be_bytes()));
        let r = Request::bare(0, 0, &[]);
        let bytes = expr(r, &Expr::Mask(vec![255, 255, 0, 0])).finish(0).unwrap();
        assert!(find(&bytes, &[255, 255, 0, 0]) && find(&bytes, b"bitwise\0"));
    }
}
