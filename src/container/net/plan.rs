//! What a machine's network is made of, as data: the link operations that
//! make its links, addresses and routes (on the host and inside; shown as
//! the `ip` lines that would do the same), the sysctls
//! it sets, each with its undo, and the whole `inet tend` nftables table
//! for the machines of one network namespace. Pure: tested without root.

use std::net::Ipv4Addr;

use super::lease::{Lease, Shared};
use super::types::{Cidr, Proto};

/// The container side of every veth pair.
pub const INSIDE_IF: &str = "host0";
/// tend's own nftables table: the only one it creates or changes.
pub const TABLE: &str = "inet tend";
/// Its name within the inet family.
pub const TABLE_NAME: &str = "tend";

/// Where a step runs: the network namespace of the launcher (the host), or
/// the container's new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Host,
    Container,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Place::Host => "on the host",
            Place::Container => "in the container",
        })
    }
}

/// One rtnetlink request (see [`crate::sys::netlink`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// A veth pair: `name` here, `peer` made straight in the network
    /// namespace at path `netns`.
    Veth {
        name: String,
        peer: String,
        netns: String,
    },
    Bridge(String),
    Delete(String),
    Up(String),
    Master {
        name: String,
        bridge: String,
    },
    Address {
        dev: String,
        addr: Ipv4Addr,
        prefix: u8,
    },
    DefaultRoute(Ipv4Addr),
}

impl std::fmt::Display for Link {
    /// As the `ip` line that would do the same: what errors name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::Veth { name, peer, netns } => write!(f, "link add {name} type veth peer name {peer} netns {netns}"),
            Link::Bridge(name) => write!(f, "link add {name} type bridge"),
            Link::Delete(name) => write!(f, "link del {name}"),
            Link::Up(name) => write!(f, "link set {name} up"),
            Link::Master { name, bridge } => write!(f, "link set {name} master {bridge}"),
            Link::Address { dev, addr, prefix } => write!(f, "addr add {addr}/{prefix} dev {dev}"),
            Link::DefaultRoute(via) => write!(f, "route add default via {via}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Link(Link),
    /// A file under /proc/sys, and what to write to it.
    Sysctl {
        key: String,
        value: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub place: Place,
    pub action: Action,
    /// What takes it back; `None` when it goes with something else (an
    /// address with its link, the container side with its namespace).
    pub undo: Option<Action>,
}

fn host(action: Action, undo: Option<Action>) -> Step {
    Step {
        place: Place::Host,
        action,
        undo,
    }
}

fn inside(link: Link) -> Step {
    Step {
        place: Place::Container,
        action: Action::Link(link),
        undo: None,
    }
}

fn ip(link: Link) -> Action {
    Action::Link(link)
}

fn sysctl(key: String, value: &str) -> Action {
    Action::Sysctl {
        key,
        value: value.into(),
    }
}

/// The machine's own steps, in order, for the container whose network
/// namespace is at path `netns`:
/// the veth pair (its peer made straight in the container's namespace),
/// the host side's address or bridge, the container side's address and
/// default route. Deleting the host side deletes the pair, its addresses
/// and routes: the only undo needed.
pub fn machine(lease: &Lease, netns: &str) -> Vec<Step> {
    let ve = &lease.host_if;
    let mut steps = vec![host(
        ip(Link::Veth {
            name: ve.clone(),
            peer: INSIDE_IF.into(),
            netns: netns.into(),
        }),
        Some(ip(Link::Delete(ve.clone()))),
    )];
    match &lease.bridge {
        Some(bridge) => steps.push(host(
            ip(Link::Master {
                name: ve.clone(),
                bridge: bridge.clone(),
            }),
            None,
        )),
        None => {
            steps.push(host(ip(address(ve, lease.gateway(), 30)), None));
            // 127.0.0.1:PORT published: the DNAT'ed packet keeps its
            // loopback source, which the kernel routes out only with this.
            if lease.publish.iter().any(|p| p.ip.map_or(true, |ip| ip.is_loopback())) {
                let key = format!("net/ipv4/conf/{ve}/route_localnet");
                steps.push(host(sysctl(key, "1"), None));
            }
        }
    }
    steps.push(host(ip(Link::Up(ve.clone())), None));
    steps.push(inside(Link::Up("lo".into())));
    steps.push(inside(address(INSIDE_IF, lease.address(), lease.prefix())));
    steps.push(inside(Link::Up(INSIDE_IF.into())));
    steps.push(inside(Link::DefaultRoute(lease.gateway())));
    steps
}

fn address(dev: &str, addr: Ipv4Addr, prefix: u8) -> Link {
    Link::Address {
        dev: dev.into(),
        addr,
        prefix,
    }
}

/// A bridge tend creates: up, with the pool's gateway address, and
/// loopback sources routable (see [`machine`]).
pub fn bridge(name: &str, pool: Cidr) -> Vec<Step> {
    let gateway = pool.nth(1).unwrap_or(pool.base);
    vec![
        host(ip(Link::Bridge(name.into())), Some(ip(Link::Delete(name.into())))),
        host(ip(address(name, gateway, pool.prefix)), None),
        host(sysctl(format!("net/ipv4/conf/{name}/route_localnet"), "1"), None),
        host(ip(Link::Up(name.into())), None),
    ]
}

pub const IP_FORWARD: &str = "net/ipv4/ip_forward";

/// Forwarding on while machines run, back to what it was after.
pub fn forwarding(shared: &Shared) -> Vec<Step> {
    vec![host(
        sysctl(IP_FORWARD.into(), "1"),
        Some(sysctl(IP_FORWARD.into(), &shared.forward_was)),
    )]
}

/// The link operations of `steps`, in order.
pub fn links<'a>(steps: impl IntoIterator<Item = &'a Step>) -> Vec<Link> {
    steps
        .into_iter()
        .filter_map(|s| match &s.action {
            Action::Link(link) => Some(link.clone()),
            Action::Sysctl { .. } => None,
        })
        .collect()
}

/// The undos of `steps`, in reverse.
pub fn undo(steps: &[Step]) -> Vec<(Place, Action)> {
    steps
        .iter()
        .rev()
        .filter_map(|s| s.undo.clone().map(|u| (s.place, u)))
        .collect()
}

/// A match of a rule of tend's table (shown in nft's words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Saddr(Cidr),
    DaddrNot(Cidr),
    Daddr(Ipv4Addr),
    Iif(String),
    Oif(String),
    /// The destination is an address of the host.
    LocalDaddr,
    Dport(Proto, u16),
    /// The connection was DNAT'ed (a published port).
    Dnatted,
    /// An answer: the connection is established or related.
    Established,
    Ipv4,
}

/// What a rule does when all its matches hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Masquerade,
    Dnat(Ipv4Addr, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub then: Verdict,
}

/// A base chain; its name, type and priority follow from the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Output,
    Postrouting,
    Forward,
}

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
            Hook::Forward => "forward",
        }
    }

    pub fn nat(self) -> bool {
        self != Hook::Forward
    }

    /// DNAT before routing (-100), masquerade after (100), filter at 0.
    pub fn priority(self) -> i32 {
        match self {
            Hook::Prerouting | Hook::Output => -100,
            Hook::Postrouting => 100,
            Hook::Forward => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub hook: Hook,
    pub rules: Vec<Rule>,
}

/// Table `inet tend` as it should be: with no chains, removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub chains: Vec<Chain>,
}

impl std::fmt::Display for Match {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Match::Saddr(c) => write!(f, "ip saddr {c}"),
            Match::DaddrNot(c) => write!(f, "ip daddr != {c}"),
            Match::Daddr(ip) => write!(f, "ip daddr {ip}"),
            Match::Iif(name) => write!(f, "iifname \"{name}\""),
            Match::Oif(name) => write!(f, "oifname \"{name}\""),
            Match::LocalDaddr => f.write_str("fib daddr type local"),
            Match::Dport(proto, port) => write!(f, "{proto} dport {port}"),
            Match::Dnatted => f.write_str("ct status dnat"),
            Match::Established => f.write_str("ct state established,related"),
            Match::Ipv4 => f.write_str("meta nfproto ipv4"),
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for m in &self.matches {
            write!(f, "{m} ")?;
        }
        match self.then {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Masquerade => f.write_str("masquerade"),
            Verdict::Dnat(ip, port) => write!(f, "dnat ip to {ip}:{port}"),
        }
    }
}

impl std::fmt::Display for Table {
    /// As the nft script that would do the same.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "table {TABLE}\ndelete table {TABLE}")?;
        if self.chains.is_empty() {
            return Ok(());
        }
        writeln!(f, "table {TABLE} {{")?;
        for chain in &self.chains {
            let (name, priority) = (chain.hook.name(), chain.hook.priority());
            let kind = if chain.hook.nat() { "nat" } else { "filter" };
            writeln!(f, "  chain {name} {{")?;
            writeln!(f, "    type {kind} hook {name} priority {priority}; policy accept;")?;
            for rule in &chain.rules {
                writeln!(f, "    {rule}")?;
            }
            writeln!(f, "  }}")?;
        }
        writeln!(f, "}}")
    }
}

fn rule(matches: Vec<Match>, then: Verdict) -> Rule {
    Rule { matches, then }
}

/// Table `inet tend` for `leases` (the machines of this network
/// namespace): no chains when there are none. Applied as one transaction
/// that creates the table (so that deleting it cannot fail), deletes it
/// and makes it anew.
pub fn ruleset(leases: &[Lease], shared: &Shared) -> Table {
    let mut chains = Vec::new();
    if leases.is_empty() {
        return Table { chains };
    }
    let mut ifs: Vec<String> = leases
        .iter()
        .map(|l| l.bridge.as_ref().unwrap_or(&l.host_if).clone())
        .collect();
    crate::sorted::sort(&mut ifs);
    ifs.dedup();
    let mut dnat = Vec::new();
    for lease in leases {
        for p in &lease.publish {
            let to = match p.ip {
                Some(ip) => Match::Daddr(ip),
                None => Match::LocalDaddr,
            };
            let then = Verdict::Dnat(lease.address(), p.port);
            dnat.push(rule(vec![to, Match::Dport(p.proto, p.host_port)], then));
        }
    }
    // Each base chain is a hook the kernel waits for on removal (an RCU
    // grace period): the DNAT ones only when a port is published.
    if !dnat.is_empty() {
        for hook in [Hook::Prerouting, Hook::Output] {
            chains.push(Chain {
                hook,
                rules: dnat.clone(),
            });
        }
    }
    let mut post = Vec::new();
    for pool in pools(leases) {
        post.push(rule(
            vec![Match::Saddr(pool), Match::DaddrNot(pool)],
            Verdict::Masquerade,
        ));
        // A machine reaching a published port (its own too, a hairpin): the
        // answer must come back through the host to be translated back.
        post.push(rule(vec![Match::Saddr(pool), Match::Dnatted], Verdict::Masquerade));
    }
    // Published to 127.0.0.1: the container answers the host's address.
    let loopback = Cidr {
        base: Ipv4Addr::new(127, 0, 0, 0),
        prefix: 8,
    };
    for i in &ifs {
        post.push(rule(
            vec![Match::Oif(i.clone()), Match::Saddr(loopback)],
            Verdict::Masquerade,
        ));
    }
    chains.push(Chain {
        hook: Hook::Postrouting,
        rules: post,
    });
    let mut forward: Vec<Rule> = ifs
        .iter()
        .map(|i| rule(vec![Match::Iif(i.clone())], Verdict::Accept))
        .collect();
    for i in &ifs {
        forward.push(rule(vec![Match::Oif(i.clone()), Match::Established], Verdict::Accept));
        forward.push(rule(vec![Match::Oif(i.clone()), Match::Dnatted], Verdict::Accept));
    }
    // Forwarding was off before tend turned it on: it stays off for all
    // but the machines' traffic (IPv4 only: IPv6 has its own switch).
    if shared.forward_was.trim() == "0" {
        forward.push(rule(vec![Match::Ipv4], Verdict::Drop));
    }
    chains.push(Chain {
        hook: Hook::Forward,
        rules: forward,
    });
    Table { chains }
}

fn pools(leases: &[Lease]) -> Vec<Cidr> {
    let mut pools: Vec<Cidr> = Vec::new();
    for lease in leases {
        if !pools.contains(&lease.pool) {
            pools.push(lease.pool);
        }
    }
    pools
}

/// The IPv4 routes of a `/proc/net/route` text: interface and prefix.
pub fn routes(text: &str) -> Vec<(String, Cidr)> {
    // The kernel prints the network-order word as a host-order number.
    let hex = |f: &str| u32::from_str_radix(f, 16).ok().map(u32::from_be);
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, mask) = (f.first()?, hex(f.get(1)?)?, hex(f.get(7)?)?);
            let prefix = u8::try_from(mask.count_ones()).ok()?;
            Some((
                iface.to_string(),
                Cidr {
                    base: Ipv4Addr::from(dest),
                    prefix,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::net::types::{parse_publish, DEFAULT_POOL};

    fn lease(name: &str, slot: u32, bridge: Option<&str>, publish: &[&str]) -> Lease {
        Lease {
            name: name.into(),
            launcher: 1,
            netns: 7,
            pool: DEFAULT_POOL,
            slot,
            bridge: bridge.map(Into::into),
            host_if: super::super::types::host_ifname(name),
            publish: publish.iter().map(|p| parse_publish(p).unwrap()).collect(),
        }
    }

    fn lines(steps: &[Step], place: Place) -> Vec<String> {
        steps
            .iter()
            .filter(|s| s.place == place)
            .map(|s| match &s.action {
                Action::Link(l) => l.to_string(),
                Action::Sysctl { key, value } => format!("{key}={value}"),
            })
            .collect()
    }

    #[test]
    fn a_veth_machine_gets_a_30_and_a_default_route() {
        let steps = machine(&lease("web", 3, None, &["8080:80"]), "4242");
        assert_eq!(
            lines(&steps, Place::Host),
            [
                "link add ve-web type veth peer name host0 netns 4242",
                "addr add 10.231.0.13/30 dev ve-web",
                "net/ipv4/conf/ve-web/route_localnet=1",
                "link set ve-web up",
            ]
        );
        assert_eq!(
            lines(&steps, Place::Container),
            [
                "link set lo up",
                "addr add 10.231.0.14/30 dev host0",
                "link set host0 up",
                "route add default via 10.231.0.13",
            ]
        );
        assert_eq!(
            undo(&steps),
            [(Place::Host, Action::Link(Link::Delete("ve-web".into())))]
        );
    }

    #[test]
    fn a_bridged_machine_uses_the_pool_and_its_gateway() {
        let steps = machine(&lease("a", 2, Some("tend0"), &[]), "9");
        assert!(lines(&steps, Place::Host).contains(&"link set ve-a master tend0".to_string()));
        assert!(lines(&steps, Place::Container).contains(&"addr add 10.231.0.10/16 dev host0".to_string()));
        assert!(lines(&steps, Place::Container).contains(&"route add default via 10.231.0.1".to_string()));
        let b = bridge("tend0", DEFAULT_POOL);
        assert_eq!(lines(&b, Place::Host)[1], "addr add 10.231.0.1/16 dev tend0");
        assert_eq!(undo(&b), [(Place::Host, Action::Link(Link::Delete("tend0".into())))]);
    }

    #[test]
    fn the_ruleset_covers_every_machine_and_only_tends_table() {
        let shared = Shared {
            netns: 7,
            forward_was: "0".into(),
            bridges: vec![],
        };
        let leases = [
            lease("web", 1, None, &["8080:80", "127.0.0.1:5353:53/udp"]),
            lease("b", 2, Some("tend0"), &[]),
        ];
        let rules = ruleset(&leases, &shared).to_string();
        assert!(rules.starts_with("table inet tend\ndelete table inet tend\ntable inet tend {"));
        assert!(
            rules.contains("fib daddr type local tcp dport 8080 dnat ip to 10.231.0.6:80"),
            "{rules}"
        );
        assert!(
            rules.contains("ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.231.0.6:53"),
            "{rules}"
        );
        assert!(rules.contains("ip saddr 10.231.0.0/16 ip daddr != 10.231.0.0/16 masquerade"));
        assert!(
            rules.contains("iifname \"tend0\" accept\n    iifname \"ve-web\" accept"),
            "{rules}"
        );
        assert!(rules.contains("    meta nfproto ipv4 drop\n"));
        // Every table statement names tend's own.
        for line in rules.lines().filter(|l| l.contains("table")) {
            assert!(line.contains("table inet tend"), "{line}");
        }
        let on = Shared {
            forward_was: "1".into(),
            ..shared.clone()
        };
        assert!(!ruleset(&leases, &on).to_string().contains("drop"));
        let quiet = ruleset(&[lease("q", 3, None, &[])], &on).to_string();
        assert!(
            !quiet.contains("prerouting") && quiet.contains("postrouting"),
            "{quiet}"
        );
        assert_eq!(
            ruleset(&[], &shared).to_string(),
            "table inet tend\ndelete table inet tend\n"
        );
        let fwd = forwarding(&shared);
        assert_eq!(undo(&fwd), [(Place::Host, sysctl(IP_FORWARD.into(), "0"))]);
    }

    #[test]
    fn proc_net_route_parses() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                    ve-x\t04000E70A\n";
        let r = routes(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].1.to_string(), "0.0.0.0/0");
        assert_eq!(r[1], ("eth0".into(), "192.168.0.0/24".parse().unwrap()));
    }
}
