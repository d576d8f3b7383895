//! Resource limits (`setrlimit`) of a unit: which resources, the soft and
//! hard values, and whether tend may set them at all.

use std::collections::BTreeMap;

/// `RLIM_INFINITY`: no limit.
pub const INFINITY: u64 = u64::MAX;

/// The resources a unit may limit, by their key in `limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Nofile,
    Nproc,
    Core,
    Memlock,
    Stack,
    As,
    Fsize,
    Cpu,
}

impl Resource {
    pub const ALL: [Resource; 8] = [
        Resource::Nofile,
        Resource::Nproc,
        Resource::Core,
        Resource::Memlock,
        Resource::Stack,
        Resource::As,
        Resource::Fsize,
        Resource::Cpu,
    ];

    /// The key in `limits`, as `ulimit` and `prlimit` name it.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Nofile => "nofile",
            Resource::Nproc => "nproc",
            Resource::Core => "core",
            Resource::Memlock => "memlock",
            Resource::Stack => "stack",
            Resource::As => "as",
            Resource::Fsize => "fsize",
            Resource::Cpu => "cpu",
        }
    }

    pub fn parse(name: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The resource as `setrlimit`/`getrlimit` take it.
    pub fn to_nix(self) -> nix::sys::resource::Resource {
        use nix::sys::resource::Resource as R;
        match self {
            Resource::Nofile => R::RLIMIT_NOFILE,
            Resource::Nproc => R::RLIMIT_NPROC,
            Resource::Core => R::RLIMIT_CORE,
            Resource::Memlock => R::RLIMIT_MEMLOCK,
            Resource::Stack => R::RLIMIT_STACK,
            Resource::As => R::RLIMIT_AS,
            Resource::Fsize => R::RLIMIT_FSIZE,
            Resource::Cpu => R::RLIMIT_CPU,
        }
    }
}

/// Soft and hard value of one limit; [`INFINITY`] is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub soft: u64,
    pub hard: u64,
}

/// How far each hard limit may be raised: the current hard limits when tend
/// lacks `CAP_SYS_RESOURCE`. A resource without an entry has no ceiling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ceilings(pub BTreeMap<Resource, u64>);

impl Ceilings {
    /// The ceiling of `resource` that `hard` exceeds, if it does.
    pub fn exceeded(&self, resource: Resource, hard: u64) -> Option<u64> {
        self.0.get(&resource).copied().filter(|&c| hard > c)
    }
}

/// Parses one limit value: a number, or `infinity`/`unlimited`/`infinite`.
pub fn parse_value(text: &str) -> Option<u64> {
    match text.trim().to_ascii_lowercase().as_str() {
        "infinity" | "unlimited" | "infinite" => Some(INFINITY),
        other => other.parse().ok(),
    }
}

/// A limit value for messages: `infinity` or the number.
pub fn show(value: u64) -> String {
    if value == INFINITY {
        "infinity".into()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Resource::ALL {
            assert_eq!(Resource::parse(r.name()), Some(r));
        }
        assert_eq!(Resource::parse("nofiles"), None);
    }

    #[test]
    fn values() {
        assert_eq!(parse_value("65536"), Some(65536));
        assert_eq!(parse_value("Unlimited"), Some(INFINITY));
        assert_eq!(parse_value("infinity"), Some(INFINITY));
        assert_eq!(parse_value("-1"), None);
        assert_eq!(parse_value("lots"), None);
        assert_eq!(show(INFINITY), "infinity");
        assert_eq!(show(7), "7");
    }

    #[test]
    fn ceilings() {
        let c = Ceilings([(Resource::Nofile, 1024)].into());
        assert_eq!(c.exceeded(Resource::Nofile, 2048), Some(1024));
        assert_eq!(c.exceeded(Resource::Nofile, 1024), None);
        assert_eq!(c.exceeded(Resource::Core, INFINITY), None);
    }
}
