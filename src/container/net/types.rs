//! The network options as values: an IPv4 prefix (`--net-pool`), a
//! published port (`--publish`), interface names. Parsing only.

use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 prefix, its address masked to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

/// The default pool: private, and rarely used by other tools.
pub const DEFAULT_POOL: Cidr = Cidr {
    base: Ipv4Addr::new(10, 231, 0, 0),
    prefix: 16,
};

impl Cidr {
    /// The netmask of a prefix length (beyond 32: as 32).
    pub fn mask(prefix: u8) -> u32 {
        u32::MAX.checked_shl(32u32.saturating_sub(prefix.into())).unwrap_or(0)
    }

    /// How many addresses the prefix spans.
    fn size(&self) -> u64 {
        1u64 << 32u32.saturating_sub(self.prefix.into())
    }

    /// The `n`-th address of the prefix (0 is the network), if inside.
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        (u64::from(n) < self.size()).then(|| Ipv4Addr::from(u32::from(self.base).wrapping_add(n)))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.prefix) == u32::from(self.base)
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        let prefix = self.prefix.min(other.prefix);
        let m = Self::mask(prefix);
        u32::from(self.base) & m == u32::from(other.base) & m
    }

    /// How many /30 slots the pool holds; slot 0 is the bridge's gateway.
    pub fn slots(&self) -> u32 {
        if self.prefix > 29 {
            return 0;
        }
        u32::try_from(self.size() / 4).unwrap_or(u32::MAX)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    /// `A.B.C.D/N`, N from 8 to 29 (a /30 per machine must fit twice).
    fn from_str(text: &str) -> Result<Cidr, String> {
        let bad = || format!("bad pool {text:?}: expected A.B.C.D/N with N from 8 to 29");
        let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=29).contains(&prefix) {
            return Err(bad());
        }
        let base = Ipv4Addr::from(u32::from(addr) & Cidr::mask(prefix));
        Ok(Cidr { base, prefix })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// `--publish [IP:]HOSTPORT:PORT[/tcp|/udp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Publish {
    /// Only connections to this host address; any local address if none.
    pub ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub port: u16,
    pub proto: Proto,
}

impl fmt::Display for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.ip {
            write!(f, "{ip}:")?;
        }
        write!(f, "{}:{}/{}", self.host_port, self.port, self.proto)
    }
}

/// Parses `--publish`'s value.
pub fn parse_publish(text: &str) -> Result<Publish, String> {
    let bad = || format!("bad publish {text:?}: expected [IP:]HOSTPORT:PORT[/tcp|/udp]");
    let (ports, proto) = match text.rsplit_once('/') {
        Some((p, "tcp")) => (p, Proto::Tcp),
        Some((p, "udp")) => (p, Proto::Udp),
        Some(_) => return Err(bad()),
        None => (text, Proto::Tcp),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (ip, host, port) = match parts.as_slice() {
        [host, port] => (None, *host, *port),
        [ip, host, port] => (Some(ip.parse::<Ipv4Addr>().map_err(|_| bad())?), *host, *port),
        _ => return Err(bad()),
    };
    let port_of = |p: &str| p.parse::<u16>().ok().filter(|&n| n > 0).ok_or_else(bad);
    Ok(Publish {
        ip,
        host_port: port_of(host)?,
        port: port_of(port)?,
        proto,
    })
}

/// The host side of a machine's veth pair: `ve-NAME`, or within the
/// kernel's 15 bytes `ve-` + the name's first 8 bytes + 4 hex digits of a
/// hash of the whole name (stable across boots).
pub fn host_ifname(machine: &str) -> String {
    let full = format!("ve-{machine}");
    if full.len() <= 15 {
        return full;
    }
    // FNV-1a: stable, and enough to tell apart names with one prefix.
    let hash = machine
        .bytes()
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    let head: String = machine.chars().take(8).collect();
    format!("ve-{head}{:04x}", hash & 0xffff)
}

/// An interface name the kernel takes (dev_valid_name): 1 to 15 bytes, no
/// `/`, `:` or white space, not `.` or `..`.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_parse_and_mask() {
        let c: Cidr = "10.231.7.9/16".parse().unwrap();
        assert_eq!(c, DEFAULT_POOL);
        assert_eq!(c.to_string(), "10.231.0.0/16");
        assert_eq!(c.slots(), 16384);
        assert_eq!(c.nth(5), Some(Ipv4Addr::new(10, 231, 0, 5)));
        assert_eq!(c.nth(65536), None);
        assert!(c.contains(Ipv4Addr::new(10, 231, 255, 1)));
        assert!(!c.contains(Ipv4Addr::new(10, 232, 0, 1)));
        assert!("10.0.0.0/30".parse::<Cidr>().is_err());
        assert!("10.0.0.0".parse::<Cidr>().is_err());
        assert!("10.0.0.300/16".parse::<Cidr>().is_err());
        let small: Cidr = "192.168.5.0/29".parse().unwrap();
        assert_eq!(small.slots(), 2);
        // A lease file is outside input: no arithmetic on it may fail.
        let odd = Cidr {
            base: Ipv4Addr::UNSPECIFIED,
            prefix: 200,
        };
        assert_eq!(
            (odd.slots(), odd.nth(0).is_some(), Cidr::mask(200)),
            (0, true, u32::MAX)
        );
    }

    #[test]
    fn overlaps_both_ways() {
        let pool: Cidr = "10.231.0.0/16".parse().unwrap();
        let sub: Cidr = "10.231.4.0/24".parse().unwrap();
        let wide: Cidr = "10.0.0.0/8".parse().unwrap();
        let other: Cidr = "10.232.0.0/16".parse().unwrap();
        assert!(pool.overlaps(&sub) && sub.overlaps(&pool));
        assert!(pool.overlaps(&wide) && wide.overlaps(&pool));
        assert!(!pool.overlaps(&other));
    }

    #[test]
    fn publish_forms() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!((p.ip, p.host_port, p.port, p.proto), (None, 8080, 80, Proto::Tcp));
        let p = parse_publish("127.0.0.1:53:5353/udp").unwrap();
        assert_eq!(p.ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!((p.host_port, p.port, p.proto), (53, 5353, Proto::Udp));
        assert_eq!(p.to_string(), "127.0.0.1:53:5353/udp");
        for bad in ["80", "0:80", "8080:80/sctp", "x:1:2", "1:2:3:4", "70000:80", ""] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interface_names_fit_and_stay_stable() {
        assert_eq!(host_ifname("web"), "ve-web");
        assert_eq!(host_ifname("twelve-chars"), "ve-twelve-chars");
        let long = host_ifname("a-very-long-machine-name");
        assert_eq!(long.len(), 15);
        assert!(long.starts_with("ve-a-very-l"));
        assert_eq!(long, host_ifname("a-very-long-machine-name"));
        assert_ne!(long, host_ifname("a-very-long-machine-name2"));
        assert!(valid_ifname("tend0") && !valid_ifname("a/b") && !valid_ifname(&"x".repeat(16)));
    }
}
