//! Carries out a network plan step by step through a [`System`]: link
//! operations as rtnetlink requests over one socket per place
//! ([`crate::sys::netlink`]), sysctls as file writes, the table as one
//! nf_tables transaction ([`crate::sys::nftables`]). On a failure, what was
//! done is undone in reverse before the error returns.
//!
//! All in this process: starting `ip` and `nft` cost a machine's boot far
//! more than the kernel's work (see the README's networking section).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::plan::{Action, Link, Match, Place, Rule, Step, Table, Verdict};
use super::Error;
use crate::sys::fault::Fault;
use crate::sys::netlink::{self as nl, Socket};
use crate::sys::nftables::{self as nft, Expr};

/// The host operations a plan needs.
pub trait System {
    /// Carries out `links` in `place`, in order, up to the first failure.
    fn links(&mut self, place: Place, links: &[Link]) -> Result<(), Error>;
    fn sysctl(&mut self, key: &str, value: &str) -> Result<(), Error>;
    fn read_sysctl(&mut self, key: &str) -> Result<String, Error>;
    /// Makes tend's table what `table` says (one transaction: all of it
    /// or nothing), on the host.
    fn table(&mut self, table: &Table) -> Result<(), Error>;
    /// A change made outside (a file of the registry) counted as a step
    /// of a fault test ([`Faulty`]); nothing elsewhere.
    fn step(&mut self) -> Result<(), nix::errno::Errno> {
        Ok(())
    }
}

/// A [`System`] that counts each change (every link request, sysctl
/// written, the table) as a step of `fault` and fails the chosen one
/// before it reaches `inner` (see [`crate::sys::fault`]); reads are no
/// steps.
pub struct Faulty<'a> {
    pub inner: &'a mut dyn System,
    pub fault: &'a mut Fault,
}

impl System for Faulty<'_> {
    fn links(&mut self, place: Place, links: &[Link]) -> Result<(), Error> {
        // One at a time: those before the failed one are made, as they
        // would be had the kernel refused it.
        for link in links {
            self.fault.step().map_err(|errno| Error::Link {
                place,
                step: link.to_string(),
                source: errno.into(),
            })?;
            self.inner.links(place, std::slice::from_ref(link))?;
        }
        Ok(())
    }

    fn sysctl(&mut self, key: &str, value: &str) -> Result<(), Error> {
        self.fault.step().map_err(|errno| Error::Sysctl {
            path: Path::new("/proc/sys").join(key),
            source: errno.into(),
        })?;
        self.inner.sysctl(key, value)
    }

    fn read_sysctl(&mut self, key: &str) -> Result<String, Error> {
        self.inner.read_sysctl(key)
    }

    fn table(&mut self, table: &Table) -> Result<(), Error> {
        self.fault
            .step()
            .map_err(|errno| Error::Table { source: errno.into() })?;
        self.inner.table(table)
    }

    fn step(&mut self) -> Result<(), nix::errno::Errno> {
        self.fault.step()
    }
}

/// Applies `steps` one by one; on failure, undoes the ones applied in
/// reverse (not the failed one: it made nothing, and a link it could not
/// make because one of its name exists is not tend's), then returns the
/// error.
pub fn apply(sys: &mut dyn System, steps: &[Step]) -> Result<(), Error> {
    for (done, step) in steps.iter().enumerate() {
        if let Err(e) = run(sys, step) {
            undo(sys, &super::plan::undo(&steps[..done]));
            return Err(e);
        }
    }
    Ok(())
}

/// Runs undos, ignoring failures: each is tried (the thing may be gone).
pub fn undo(sys: &mut dyn System, undos: &[(Place, Action)]) {
    for (place, action) in undos {
        let result = match action {
            Action::Link(link) => sys.links(*place, std::slice::from_ref(link)),
            Action::Sysctl { key, value } => sys.sysctl(key, value),
        };
        if let Err(e) = result {
            tracing::debug!("undo: {}", crate::sys::chain(&e));
        }
    }
}

fn run(sys: &mut dyn System, step: &Step) -> Result<(), Error> {
    match &step.action {
        Action::Sysctl { key, value } => sys.sysctl(key, value),
        Action::Link(link) => sys.links(step.place, std::slice::from_ref(link)),
    }
}

/// The real host: rtnetlink, /proc/sys, and `nft` from nftables.
pub struct Real {
    /// The container's network namespace, for [`Place::Container`].
    netns: Option<PathBuf>,
    /// The sockets of each place, opened when first needed.
    host: Option<Socket>,
    inside: Option<Socket>,
    /// The nf_tables socket: kept, as closing it after a change waits
    /// on the kernel (see [`crate::sys::nftables::open`]).
    nft: Option<OwnedFd>,
}

pub fn find_tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// One link operation as rtnetlink requests on `socket` (a name becomes an
/// index by a request of its own where the kernel wants an index).
fn carry_out(socket: &mut Socket, link: &Link) -> io::Result<()> {
    let request = match link {
        Link::Veth { name, peer, netns } => {
            // Open until the kernel has answered: it reads the descriptor.
            let ns = crate::sys::ns::open_ns_file(Path::new(netns))?;
            return socket.call(nl::add_veth(name, peer, ns.as_raw_fd())).map(drop);
        }
        Link::Bridge(name) => nl::add_bridge(name),
        Link::Delete(name) => nl::delete_link(name),
        Link::Up(name) => nl::set_up(name),
        Link::Master { name, bridge } => nl::set_master(name, socket.index(bridge)?),
        Link::Address { dev, addr, prefix } => nl::add_address(socket.index(dev)?, *addr, *prefix),
        Link::DefaultRoute(via) => nl::add_default_route(*via),
    };
    socket.call(request).map(drop)
}

impl Real {
    /// For steps on the host only.
    pub fn host() -> Real {
        Real {
            netns: None,
            host: None,
            inside: None,
            nft: None,
        }
    }

    /// For steps on the host, with the nf_tables socket of an earlier one.
    pub fn host_with(nft: Option<OwnedFd>) -> Real {
        Real { nft, ..Real::host() }
    }

    /// The nf_tables socket, if one was opened: to close later, elsewhere.
    pub fn take_nft(&mut self) -> Option<OwnedFd> {
        self.nft.take()
    }

    /// The index of host link `name`, if there is one.
    pub fn host_index(&mut self, name: &str) -> Option<u32> {
        let socket = self.socket(Place::Host).ok()?;
        socket.link(name).ok().flatten().map(|l| l.index)
    }

    /// For steps on the host and in the container whose network namespace
    /// is at `netns`.
    pub fn container(netns: PathBuf) -> Real {
        Real {
            netns: Some(netns),
            ..Real::host()
        }
    }

    fn socket(&mut self, place: Place) -> Result<&mut Socket, Error> {
        let failed = |source| Error::Link {
            place,
            step: "open a netlink socket".into(),
            source,
        };
        let slot = match place {
            Place::Host => &mut self.host,
            Place::Container => &mut self.inside,
        };
        if let Some(socket) = slot {
            return Ok(socket);
        }
        let socket = match place {
            Place::Host => Socket::open(),
            Place::Container => {
                let path = self.netns.as_deref().ok_or(Error::Missing("the container"))?;
                crate::sys::ns::open_ns_file(path).and_then(Socket::open_in)
            }
        }
        .map_err(failed)?;
        Ok(slot.insert(socket))
    }

    /// The kind of link `name` on the host (`None`: there is none).
    pub fn link_kind(&mut self, name: &str) -> Result<Option<Option<String>>, Error> {
        let link = self.socket(Place::Host)?.link(name).map_err(|source| Error::Link {
            place: Place::Host,
            step: format!("link show {name}"),
            source,
        })?;
        Ok(link.map(|l| l.kind))
    }
}

impl System for Real {
    fn links(&mut self, place: Place, links: &[Link]) -> Result<(), Error> {
        let socket = self.socket(place)?;
        for link in links {
            carry_out(socket, link).map_err(|source| Error::Link {
                place,
                step: link.to_string(),
                source,
            })?;
        }
        Ok(())
    }

    fn sysctl(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let path = Path::new("/proc/sys").join(key);
        std::fs::write(&path, value).map_err(|source| Error::Sysctl { path, source })
    }

    fn read_sysctl(&mut self, key: &str) -> Result<String, Error> {
        let path = Path::new("/proc/sys").join(key);
        std::fs::read_to_string(&path)
            .map(|v| v.trim().to_string())
            .map_err(|source| Error::Sysctl { path, source })
    }

    fn table(&mut self, table: &Table) -> Result<(), Error> {
        let chains: Vec<nft::Chain> = table
            .chains
            .iter()
            .map(|c| nft::Chain {
                name: c.hook.name().into(),
                hook: hook(c.hook),
                priority: c.hook.priority(),
                nat: c.hook.nat(),
                rules: c.rules.iter().map(exprs).collect(),
            })
            .collect();
        let socket = match self.nft.take() {
            Some(socket) => socket,
            None => nft::open().map_err(|source| Error::Table { source })?,
        };
        let sent = nft::send(&socket, nft::replace_table(super::plan::TABLE_NAME, &chains));
        self.nft = Some(socket);
        sent.map_err(|source| Error::Table { source })
    }
}

fn hook(hook: super::plan::Hook) -> u32 {
    use super::plan::Hook;
    match hook {
        Hook::Prerouting => nft::HOOK_PREROUTING,
        Hook::Output => nft::HOOK_OUTPUT,
        Hook::Postrouting => nft::HOOK_POSTROUTING,
        Hook::Forward => nft::HOOK_FORWARD,
    }
}

fn cmp(data: Vec<u8>) -> Expr {
    Expr::Cmp { eq: true, data }
}

/// A field of the IPv4 header: the source (offset 12) or the destination.
fn ip_field(offset: u32) -> Expr {
    Expr::Payload {
        base: nft::NETWORK_HEADER,
        offset,
        len: 4,
    }
}

/// The prefix of a field: masked, then compared to the network.
fn in_prefix(offset: u32, c: super::types::Cidr, eq: bool) -> Vec<Expr> {
    let mask = super::types::Cidr::mask(c.prefix).to_be_bytes().to_vec();
    let mut out = vec![ip_field(offset)];
    if c.prefix < 32 {
        out.push(Expr::Mask(mask));
    }
    out.push(Expr::Cmp {
        eq,
        data: c.base.octets().to_vec(),
    });
    out
}

/// An interface name as the kernel loads it: NUL-padded to IFNAMSIZ.
fn ifname(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.resize(16, 0);
    v
}

/// A conntrack word with any of `bits` set.
fn ct_any(key: u32, bits: u32) -> Vec<Expr> {
    vec![
        Expr::Ct(key),
        Expr::Mask(bits.to_ne_bytes().to_vec()),
        Expr::Cmp {
            eq: false,
            data: vec![0; 4],
        },
    ]
}

/// A rule as nf_tables expressions. A rule on IPv4 fields (in an inet
/// table, which sees IPv6 too) first checks that the packet is IPv4, as
/// nft adds on its own.
pub fn exprs(rule: &Rule) -> Vec<Expr> {
    let ipv4 = matches!(rule.then, Verdict::Dnat(..))
        || rule
            .matches
            .iter()
            .any(|m| matches!(m, Match::Saddr(_) | Match::DaddrNot(_) | Match::Daddr(_)));
    let mut out = Vec::new();
    if ipv4 && !rule.matches.contains(&Match::Ipv4) {
        out.extend(matcher(&Match::Ipv4));
    }
    for m in &rule.matches {
        out.extend(matcher(m));
    }
    out.push(match rule.then {
        Verdict::Accept => Expr::Accept,
        Verdict::Drop => Expr::Drop,
        Verdict::Masquerade => Expr::Masquerade,
        Verdict::Dnat(ip, port) => Expr::Dnat(ip, port),
    });
    out
}

// IPS_DST_NAT, and the ct state bits of established and related.
const CT_STATUS_DNAT: u32 = 1 << 5;
const CT_STATE_ESTABLISHED_RELATED: u32 = (1 << 1) | (1 << 2);
const RTN_LOCAL: u32 = 2;

fn matcher(m: &Match) -> Vec<Expr> {
    match m {
        Match::Saddr(c) => in_prefix(12, *c, true),
        Match::DaddrNot(c) => in_prefix(16, *c, false),
        Match::Daddr(ip) => vec![ip_field(16), cmp(ip.octets().to_vec())],
        Match::Iif(name) => vec![Expr::Meta(nft::META_IIFNAME), cmp(ifname(name))],
        Match::Oif(name) => vec![Expr::Meta(nft::META_OIFNAME), cmp(ifname(name))],
        Match::LocalDaddr => vec![Expr::FibDaddrType, cmp(RTN_LOCAL.to_ne_bytes().to_vec())],
        Match::Dport(proto, port) => {
            let number = match proto {
                super::types::Proto::Tcp => libc::IPPROTO_TCP,
                super::types::Proto::Udp => libc::IPPROTO_UDP,
            };
            vec![
                Expr::Meta(nft::META_L4PROTO),
                cmp(vec![u8::try_from(number).unwrap_or(0)]),
                Expr::Payload {
                    base: nft::TRANSPORT_HEADER,
                    offset: 2,
                    len: 2,
                },
                cmp(port.to_be_bytes().to_vec()),
            ]
        }
        Match::Dnatted => ct_any(nft::CT_STATUS, CT_STATUS_DNAT),
        Match::Established => ct_any(nft::CT_STATE, CT_STATE_ESTABLISHED_RELATED),
        Match::Ipv4 => vec![Expr::Meta(nft::META_NFPROTO), cmp(vec![nft::NFPROTO_IPV4])],
    }
}

/// Records what it is asked and fails where told: applying tested
/// without root.
#[derive(Debug, Default)]
pub struct Recording {
    pub log: Vec<String>,
    /// Fail the call whose log entry contains this.
    pub fail_on: Option<String>,
}

impl Recording {
    fn record(&mut self, entry: String) -> Result<(), Error> {
        let fail = self.fail_on.as_ref().is_some_and(|f| entry.contains(f.as_str()));
        self.log.push(entry);
        if fail {
            return Err(Error::Missing("(told to fail)"));
        }
        Ok(())
    }
}

impl System for Recording {
    fn links(&mut self, place: Place, links: &[Link]) -> Result<(), Error> {
        let lines: Vec<String> = links.iter().map(Link::to_string).collect();
        self.record(format!("ip {place:?}: {}", lines.join("; ")))
    }

    fn sysctl(&mut self, key: &str, value: &str) -> Result<(), Error> {
        self.record(format!("sysctl {key}={value}"))
    }

    fn read_sysctl(&mut self, _key: &str) -> Result<String, Error> {
        Ok("0".into())
    }

    fn table(&mut self, table: &Table) -> Result<(), Error> {
        self.record(format!("nft {}", table.to_string().lines().count()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::net::lease::Lease;
    use crate::container::net::plan;
    use crate::container::net::types::{parse_publish, DEFAULT_POOL};

    fn web() -> Lease {
        Lease {
            name: "web".into(),
            launcher: 1,
            netns: 1,
            pool: DEFAULT_POOL,
            slot: 1,
            bridge: None,
            host_if: "ve-web".into(),
            publish: vec![parse_publish("8080:80").unwrap()],
        }
    }

    #[test]
    fn steps_are_applied_in_order_each_in_its_place() {
        let mut sys = Recording::default();
        apply(&mut sys, &plan::machine(&web(), "42")).unwrap();
        assert_eq!(
            sys.log,
            [
                "ip Host: link add ve-web type veth peer name host0 netns 42",
                "ip Host: addr add 10.231.0.5/30 dev ve-web",
                "sysctl net/ipv4/conf/ve-web/route_localnet=1",
                "ip Host: link set ve-web up",
                "ip Container: link set lo up",
                "ip Container: addr add 10.231.0.6/30 dev host0",
                "ip Container: link set host0 up",
                "ip Container: route add default via 10.231.0.5",
            ]
        );
    }

    #[test]
    fn rules_become_expressions_with_their_ipv4_dependency() {
        let pool = DEFAULT_POOL;
        let masq = Rule {
            matches: vec![Match::Saddr(pool), Match::DaddrNot(pool)],
            then: Verdict::Masquerade,
        };
        let nfproto = [Expr::Meta(nft::META_NFPROTO), cmp(vec![nft::NFPROTO_IPV4])];
        let field = |offset| Expr::Payload {
            base: nft::NETWORK_HEADER,
            offset,
            len: 4,
        };
        let mut want = nfproto.to_vec();
        want.extend([
            field(12),
            Expr::Mask(vec![255, 255, 0, 0]),
            cmp(vec![10, 231, 0, 0]),
            field(16),
            Expr::Mask(vec![255, 255, 0, 0]),
            Expr::Cmp {
                eq: false,
                data: vec![10, 231, 0, 0],
            },
            Expr::Masquerade,
        ]);
        assert_eq!(exprs(&masq), want);
        // An interface match needs no IPv4 check; its name is NUL-padded.
        let accept = Rule {
            matches: vec![Match::Iif("ve-web".into())],
            then: Verdict::Accept,
        };
        assert_eq!(
            exprs(&accept),
            [
                Expr::Meta(nft::META_IIFNAME),
                cmp(b"ve-web\0\0\0\0\0\0\0\0\0\0".to_vec()),
                Expr::Accept
            ]
        );
        // A published port: IPv4, the host's address, the port, then DNAT.
        let to = std::net::Ipv4Addr::new(10, 231, 0, 6);
        let dnat = Rule {
            matches: vec![Match::LocalDaddr, Match::Dport(crate::container::net::Proto::Tcp, 8080)],
            then: Verdict::Dnat(to, 80),
        };
        let got = exprs(&dnat);
        assert_eq!(&got[..2], &nfproto);
        assert_eq!(got[2], Expr::FibDaddrType);
        assert_eq!(
            got[6],
            Expr::Payload {
                base: nft::TRANSPORT_HEADER,
                offset: 2,
                len: 2
            }
        );
        assert_eq!(got[7], cmp(vec![0x1f, 0x90]));
        assert_eq!(got.last(), Some(&Expr::Dnat(to, 80)));
    }

    #[test]
    fn a_failed_step_undoes_what_was_done() {
        let mut sys = Recording {
            fail_on: Some("Container".into()),
            ..Recording::default()
        };
        assert!(apply(&mut sys, &plan::machine(&web(), "42")).is_err());
        assert_eq!(sys.log.last().map(String::as_str), Some("ip Host: link del ve-web"));
        let mut sys = Recording {
            fail_on: Some("link add".into()),
            ..Recording::default()
        };
        assert!(apply(&mut sys, &plan::machine(&web(), "42")).is_err());
        // The failed step made nothing: a link of that name is not tend's.
        assert_eq!(sys.log.len(), 1);
    }
}
