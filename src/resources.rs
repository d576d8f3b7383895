//! Cgroup resource control of a unit (`memory-max`, `cpus`, `pids-max`...):
//! the values, their parsing, and the one table that maps each key to the
//! files of cgroup v2 and of cgroup v1. What to write is a plan (data),
//! applied by the runtime; nothing here touches a file.

use std::collections::BTreeSet;

/// No limit: `"infinity"` (or `"max"`) in a unit, `max` in cgroup v2.
pub const MAX: u64 = u64::MAX;

/// The period of `cpus`, in microseconds (systemd's and the kernel's
/// default): `cpus = 0.5` is 50000 µs of CPU time per 100000 µs.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The resources a unit bounds; `None` leaves the kernel's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Bytes, or [`MAX`].
    pub memory_max: Option<u64>,
    pub memory_high: Option<u64>,
    pub memory_swap_max: Option<u64>,
    /// `cpus` as a quota in µs per [`CPU_PERIOD_US`], or [`MAX`].
    pub cpu_quota: Option<u64>,
    /// 1–10000, default 100.
    pub cpu_weight: Option<u64>,
    pub pids_max: Option<u64>,
    /// 1–10000, default 100.
    pub io_weight: Option<u64>,
}

/// A controller, named as cgroup v2 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    Memory,
    Cpu,
    Pids,
    Io,
}

impl Controller {
    pub const ALL: [Controller; 4] = [Controller::Memory, Controller::Cpu, Controller::Pids, Controller::Io];

    /// Its name in v2's `cgroup.controllers`.
    pub fn v2_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
            Controller::Io => "io",
        }
    }

    /// Its v1 hierarchy (`/sys/fs/cgroup/NAME`).
    pub fn v1_name(self) -> &'static str {
        match self {
            Controller::Io => "blkio",
            other => other.v2_name(),
        }
    }
}

/// What the host offers units for cgroup limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Support {
    /// Not known (fixtures): every limit is accepted.
    #[default]
    Any,
    /// No writable, delegated cgroup: limits are not applied (one line per
    /// unit that asks for them), the units run.
    ReadOnly,
    /// These controllers can be used; a limit of another is an error.
    Only(BTreeSet<Controller>),
}

/// A key of a unit file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    MemoryMax,
    MemoryHigh,
    MemorySwapMax,
    Cpus,
    CpuWeight,
    PidsMax,
    IoWeight,
}

/// One row of the mapping: a key, its controller, and its files in each
/// layout. Mirrored by the table in `units/README.md`.
pub struct Row {
    pub key: Key,
    pub name: &'static str,
    pub controller: Controller,
    pub v2: &'static str,
    /// The first of these files that exists is written; none: no v1
    /// equivalent (the key is ignored there, with one warning).
    pub v1: &'static [&'static str],
}

/// The mapping. Values are converted by [`v2_value`] and [`v1_value`].
pub const TABLE: [Row; 7] = [
    row(
        Key::MemoryMax,
        "memory-max",
        Controller::Memory,
        "memory.max",
        &["memory.limit_in_bytes"],
    ),
    row(Key::MemoryHigh, "memory-high", Controller::Memory, "memory.high", &[]),
    // v1 bounds memory plus swap: memory-max + memory-swap-max.
    row(
        Key::MemorySwapMax,
        "memory-swap-max",
        Controller::Memory,
        "memory.swap.max",
        &["memory.memsw.limit_in_bytes"],
    ),
    // v1: the period is written before the quota (see `v1_value`).
    row(Key::Cpus, "cpus", Controller::Cpu, "cpu.max", &["cpu.cfs_quota_us"]),
    row(
        Key::CpuWeight,
        "cpu-weight",
        Controller::Cpu,
        "cpu.weight",
        &["cpu.shares"],
    ),
    row(Key::PidsMax, "pids-max", Controller::Pids, "pids.max", &["pids.max"]),
    row(
        Key::IoWeight,
        "io-weight",
        Controller::Io,
        "io.weight",
        &["blkio.weight", "blkio.bfq.weight"],
    ),
];

const fn row(
    key: Key,
    name: &'static str,
    controller: Controller,
    v2: &'static str,
    v1: &'static [&'static str],
) -> Row {
    Row {
        key,
        name,
        controller,
        v2,
        v1,
    }
}

/// Which files: the unified hierarchy, or v1 controller hierarchies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    V2,
    V1,
}

/// One file to write in a service's cgroup of `controller` (v1: its
/// hierarchy; v2: the one cgroup). `files`: the first that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: Controller,
    pub files: &'static [&'static str],
    pub value: String,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    pub fn get(&self, key: Key) -> Option<u64> {
        match key {
            Key::MemoryMax => self.memory_max,
            Key::MemoryHigh => self.memory_high,
            Key::MemorySwapMax => self.memory_swap_max,
            Key::Cpus => self.cpu_quota,
            Key::CpuWeight => self.cpu_weight,
            Key::PidsMax => self.pids_max,
            Key::IoWeight => self.io_weight,
        }
    }

    /// The controllers its keys need.
    pub fn controllers(&self) -> BTreeSet<Controller> {
        crate::sorted::set(TABLE.iter().filter(|r| self.get(r.key).is_some()).map(|r| r.controller))
    }

    /// The keys set that `layout` has no file for: ignored, with a warning.
    pub fn unsupported(&self, layout: Layout) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if layout == Layout::V1 {
            if self.memory_high.is_some() {
                keys.push("memory-high");
            }
            if self.memory_swap_max.is_some() && self.memory_max.is_none() {
                keys.push("memory-swap-max (without memory-max)");
            }
        }
        keys
    }
}

/// The writes that take a service's cgroup from `old` to `new` (from
/// `Resources::default()` when it starts): the keys that changed, a key
/// that was removed set back to the kernel's default.
pub fn plan(old: &Resources, new: &Resources, layout: Layout) -> Vec<Write> {
    let mut writes = Vec::new();
    for row in &TABLE {
        // v1's memsw is memory-max + memory-swap-max: its own value says.
        let changed = match (layout, row.key) {
            (Layout::V1, Key::MemorySwapMax) => v1_value(row.key, old) != v1_value(row.key, new),
            _ => old.get(row.key) != new.get(row.key),
        };
        if !changed {
            continue;
        }
        match layout {
            Layout::V2 => writes.push(Write {
                controller: row.controller,
                files: std::slice::from_ref(&row.v2),
                value: v2_value(row.key, new.get(row.key)),
            }),
            Layout::V1 => writes.extend(v1_writes(row, new)),
        }
    }
    writes
}

/// The v2 text for a key's value (`None`: the default).
pub fn v2_value(key: Key, value: Option<u64>) -> String {
    match (key, value) {
        (Key::Cpus, Some(quota)) if quota != MAX => format!("{quota} {CPU_PERIOD_US}"),
        (Key::Cpus, _) => format!("max {CPU_PERIOD_US}"),
        (Key::CpuWeight, v) => v.unwrap_or(100).to_string(),
        (Key::IoWeight, v) => format!("default {}", v.unwrap_or(100)),
        (_, Some(n)) if n != MAX => n.to_string(),
        (_, _) => "max".into(),
    }
}

fn v1_writes(row: &Row, new: &Resources) -> Vec<Write> {
    let write = |files, value| Write {
        controller: row.controller,
        files,
        value,
    };
    // A v1 cgroup's `cpu.cfs_period_us` is the kernel's default, 100 ms,
    // the period the quota is taken against: it is not written (each write
    // of either file makes the kernel check every cgroup's bandwidth).
    match v1_value(row.key, new) {
        None => Vec::new(),
        Some(value) => vec![write(row.v1, value)],
    }
}

/// The v1 text for a key of `new`; `None` where v1 has no file for it.
pub fn v1_value(key: Key, new: &Resources) -> Option<String> {
    let bytes = |v: Option<u64>| match v {
        Some(n) if n != MAX => n.to_string(),
        _ => "-1".into(),
    };
    Some(match key {
        Key::MemoryMax => bytes(new.memory_max),
        Key::MemoryHigh => return None,
        // memsw bounds memory + swap, so it needs memory-max to mean
        // anything; unlimited otherwise.
        Key::MemorySwapMax => match (new.memory_max, new.memory_swap_max) {
            (Some(m), Some(s)) if m != MAX && s != MAX => m.saturating_add(s).to_string(),
            _ => "-1".into(),
        },
        Key::Cpus => match new.cpu_quota {
            Some(q) if q != MAX => q.to_string(),
            _ => "-1".into(),
        },
        Key::CpuWeight => weight_to_shares(new.cpu_weight.unwrap_or(100)).to_string(),
        Key::PidsMax => match new.pids_max {
            Some(n) if n != MAX => n.to_string(),
            _ => "max".into(),
        },
        Key::IoWeight => weight_to_blkio(new.io_weight.unwrap_or(100)).to_string(),
    })
}

/// `cpu.shares` for a weight, as systemd converts: 100 is 1024.
pub fn weight_to_shares(weight: u64) -> u64 {
    (weight.saturating_mul(1024) / 100).clamp(2, 262_144)
}

/// `blkio.weight` (10–1000, default 500) for an io weight, as systemd
/// converts: 100 is 500.
pub fn weight_to_blkio(weight: u64) -> u64 {
    (weight.saturating_mul(500) / 100).clamp(10, 1000)
}

/// Parses a size: bytes, or a number (fractions allowed) with `K`, `M`,
/// `G` or `T` (powers of 1024), or `infinity`/`max`. The error says why.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if matches!(text.to_ascii_lowercase().as_str(), "infinity" | "max") {
        return Ok(MAX);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let shift = match suffix.trim().to_ascii_uppercase().trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err("expected bytes, a size like \"512M\" or \"1.5G\", or \"infinity\"".into()),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| "expected bytes, a size like \"512M\" or \"1.5G\", or \"infinity\"".to_string())?;
    let bytes = value * (1u64 << shift) as f64;
    if !(1.0..9.0e18).contains(&bytes) {
        return Err("out of range".into());
    }
    Ok(bytes.round() as u64)
}

/// The quota of `cpus` CPUs per [`CPU_PERIOD_US`]: from 0.01 (1 ms, the
/// kernel's smallest quota) to 10000 CPUs.
pub fn cpus_quota(cpus: f64) -> Result<u64, String> {
    if !(0.01..=10_000.0).contains(&cpus) {
        return Err("expected a number of CPUs from 0.01 to 10000".into());
    }
    Ok((cpus * CPU_PERIOD_US as f64).round() as u64)
}

/// Memory in use, as `tend ctl status` and `tend list` show it: `12.5M`.
pub fn show_used(bytes: u64) -> String {
    format!("{:.1}M", bytes as f64 / 1_048_576.0)
}

/// A size for messages: `64M`, `1536K`, `infinity`, else bytes.
pub fn show_size(bytes: u64) -> String {
    if bytes == MAX {
        return "infinity".into();
    }
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes % (1u64 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1.5G"), Ok(1536 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2GB"), Ok(2 << 30));
        assert_eq!(parse_size("infinity"), Ok(MAX));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("-1M").is_err());
        assert!(parse_size("1.2.3M").is_err());
        assert_eq!(show_used(13 << 19), "6.5M");
        assert_eq!(show_size(64 << 20), "64M");
        assert_eq!(show_size(1536 << 20), "1536M");
        assert_eq!(show_size(1000), "1000");
        assert_eq!(show_size(MAX), "infinity");
    }

    fn all() -> Resources {
        Resources {
            memory_max: Some(64 << 20),
            memory_high: Some(48 << 20),
            memory_swap_max: Some(16 << 20),
            cpu_quota: Some(25_000),
            cpu_weight: Some(200),
            pids_max: Some(50),
            io_weight: Some(1000),
        }
    }

    fn shown(writes: &[Write]) -> Vec<(String, String)> {
        writes.iter().map(|w| (w.files.join("|"), w.value.clone())).collect()
    }

    #[test]
    fn v2_plan_writes_each_key_to_its_file() {
        let writes = plan(&Resources::default(), &all(), Layout::V2);
        let expected = [
            ("memory.max", "67108864"),
            ("memory.high", "50331648"),
            ("memory.swap.max", "16777216"),
            ("cpu.max", "25000 100000"),
            ("cpu.weight", "200"),
            ("pids.max", "50"),
            ("io.weight", "default 1000"),
        ];
        let expected: Vec<_> = expected.iter().map(|(f, v)| (f.to_string(), v.to_string())).collect();
        assert_eq!(shown(&writes), expected);
    }

    #[test]
    fn v1_plan_converts_and_leaves_out_memory_high() {
        let writes = plan(&Resources::default(), &all(), Layout::V1);
        let expected = [
            ("memory.limit_in_bytes", "67108864"),
            ("memory.memsw.limit_in_bytes", "83886080"),
            ("cpu.cfs_quota_us", "25000"),
            ("cpu.shares", "2048"),
            ("pids.max", "50"),
            ("blkio.weight|blkio.bfq.weight", "1000"),
        ];
        let expected: Vec<_> = expected.iter().map(|(f, v)| (f.to_string(), v.to_string())).collect();
        assert_eq!(shown(&writes), expected);
        assert_eq!(all().unsupported(Layout::V1), ["memory-high"]);
        assert!(all().unsupported(Layout::V2).is_empty());
    }

    #[test]
    fn a_change_writes_what_changed_and_resets_what_went() {
        let old = Resources {
            memory_max: Some(32 << 20),
            pids_max: Some(50),
            ..Resources::default()
        };
        let new = Resources {
            memory_max: Some(64 << 20),
            ..Resources::default()
        };
        let v2 = plan(&old, &new, Layout::V2);
        let pairs = [("memory.max", "67108864"), ("pids.max", "max")];
        let pairs: Vec<_> = pairs.iter().map(|(f, v)| (f.to_string(), v.to_string())).collect();
        assert_eq!(shown(&v2), pairs);
        // v1: memsw follows memory-max when both are set, and is written
        // only when its value changes.
        let v1 = plan(&old, &new, Layout::V1);
        assert_eq!(v1.len(), 2);
        let swap = Resources {
            memory_swap_max: Some(1 << 20),
            ..old
        };
        let new_swap = Resources {
            memory_swap_max: Some(1 << 20),
            ..new
        };
        let v1 = plan(&swap, &new_swap, Layout::V1);
        let memsw = ("memory.memsw.limit_in_bytes".to_string(), (65u64 << 20).to_string());
        assert_eq!(shown(&v1)[1], memsw);
        assert!(plan(&new, &new, Layout::V2).is_empty());
    }

    #[test]
    fn defaults_and_conversions() {
        assert_eq!(v2_value(Key::Cpus, None), "max 100000");
        assert_eq!(v2_value(Key::MemoryMax, Some(MAX)), "max");
        assert_eq!(weight_to_shares(100), 1024);
        assert_eq!(weight_to_shares(1), 10);
        assert_eq!(weight_to_shares(10000), 102_400);
        assert_eq!(weight_to_blkio(100), 500);
        assert_eq!(weight_to_blkio(1), 10);
        assert_eq!(weight_to_blkio(10000), 1000);
    }
}
