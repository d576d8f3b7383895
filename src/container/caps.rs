//! The capabilities a container keeps (pure): the names as
//! `capabilities(7)` and systemd-nspawn spell them, the default set, the
//! `--capability` / `--drop-capability` arithmetic, and the plan PID 1
//! applies ([`crate::sys::caps`] carries it out).
//!
//! The default starts from what systemd-nspawn keeps (its bounding set here
//! is `00000000fcecafff`): no module loading, raw I/O, clock, process
//! accounting, kernel log, MAC, wake alarms, suspend blocking, bpf, perf or
//! checkpoint/restore; `CAP_NET_ADMIN` only over a private network.

/// A set of capabilities, bit N for capability N.
pub type Set = u64;

/// Every capability the kernel knew when this was written, by number
/// (`linux/capability.h`), lower case without the `cap_` prefix.
pub const NAMES: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// Every capability of [`NAMES`] (and any newer one the kernel has: `all`
/// keeps those too, as nspawn's `all` does).
pub const ALL: Set = u64::MAX;

/// What a container keeps by default: systemd-nspawn's list.
pub const DEFAULT: &[&str] = &[
    "audit_control",
    "audit_write",
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "ipc_owner",
    "kill",
    "lease",
    "linux_immutable",
    "mknod",
    "net_bind_service",
    "net_broadcast",
    "net_raw",
    "setfcap",
    "setgid",
    "setpcap",
    "setuid",
    "sys_admin",
    "sys_boot",
    "sys_chroot",
    "sys_nice",
    "sys_ptrace",
    "sys_resource",
    "sys_tty_config",
];

/// Never in the default, whatever changes above: the list.
pub const NEVER_BY_DEFAULT: &[&str] = &[
    "sys_module",
    "sys_rawio",
    "sys_time",
    "sys_pacct",
    "syslog",
    "mac_admin",
    "mac_override",
    "wake_alarm",
    "block_suspend",
    "bpf",
    "perfmon",
    "checkpoint_restore",
];

/// The number of `name` (`CAP_SYS_ADMIN`, `cap_sys_admin` or `sys_admin`).
pub fn number(name: &str) -> Option<u32> {
    let lower = name.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

/// The set of a comma-separated list; `all` is every capability. The error
/// is the first unknown name.
pub fn parse(list: &str) -> Result<Set, String> {
    let mut set = 0;
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.eq_ignore_ascii_case("all") {
            set = ALL;
            continue;
        }
        let n = number(name).ok_or_else(|| name.to_string())?;
        set |= 1 << n;
    }
    Ok(set)
}

fn set_of(names: &[&str]) -> Set {
    names.iter().filter_map(|n| number(n)).fold(0, |s, n| s | 1 << n)
}

/// The starting set: everything for `--privileged`, else nspawn's, with
/// `CAP_NET_ADMIN` when the network namespace is the container's own.
pub fn base(privileged: bool, private_net: bool) -> Set {
    if privileged {
        return ALL;
    }
    let mut set = set_of(DEFAULT);
    if private_net {
        set |= 1 << NAMES.iter().position(|n| *n == "net_admin").unwrap_or(12);
    }
    set
}

/// `base`, plus `--capability`, minus `--drop-capability` (a capability in
/// both is dropped, as in nspawn).
pub fn resolve(base: Set, add: Set, drop: Set) -> Set {
    (base | add) & !drop
}

/// What PID 1 does to its own capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Removed from the bounding set, one `PR_CAPBSET_DROP` each.
    pub drop_bounding: Vec<u32>,
    /// Effective, permitted and inheritable afterwards (ambient cleared):
    /// so a root service, after execve, gets exactly the bounding set.
    pub keep: Set,
}

/// The plan for `wanted`, given the capabilities PID 1 has (`permitted`)
/// and the highest the kernel knows (`last_cap`, from
/// `/proc/sys/kernel/cap_last_cap`).
pub fn plan(wanted: Set, permitted: Set, last_cap: u32) -> Plan {
    let last = last_cap.min(63);
    let drop_bounding = (0..=last).filter(|n| wanted & (1 << n) == 0).collect();
    let known = if last == 63 { ALL } else { (1u64 << (last + 1)) - 1 };
    Plan {
        drop_bounding,
        keep: wanted & permitted & known,
    }
}

/// The names of a set, `cap_x` form, comma-separated (for messages and docs).
pub fn names(set: Set) -> String {
    NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| set & (1 << i) != 0)
        .map(|(_, n)| format!("cap_{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_every_spelling() {
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("cap_sys_admin"), Some(21));
        assert_eq!(number("sys_admin"), Some(21));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("cap_nope"), None);
        assert_eq!(parse("CAP_CHOWN, cap_kill"), Ok(1 | 1 << 5));
        assert_eq!(parse("all"), Ok(ALL));
        assert_eq!(parse("chown,cap_bogus,kill"), Err("cap_bogus".into()));
    }

    #[test]
    fn the_default_is_nspawns_minus_the_dangerous_ones() {
        // nspawn's bounding set measured here, plus CAP_SYS_RESOURCE, which
        // this machine lacks (so nspawn could not keep it).
        let nspawn = 0x0000_0000_fcec_afff | 1 << 24;
        assert_eq!(base(false, false), nspawn);
        assert_eq!(base(false, true), nspawn | 1 << 12, "net_admin over its own network");
        for name in NEVER_BY_DEFAULT {
            let n = number(name).unwrap();
            assert_eq!(base(false, true) & 1 << n, 0, "{name} is not in the default");
        }
        assert_eq!(base(true, false), ALL);
    }

    #[test]
    fn add_then_drop() {
        let b = base(false, false);
        let sys_time = 1 << 25;
        assert_eq!(resolve(b, sys_time, 0), b | sys_time);
        assert_eq!(resolve(b, sys_time, sys_time), b, "drop wins");
        assert_eq!(resolve(b, 0, ALL), 0);
        assert_eq!(resolve(b, ALL, 0), ALL);
    }

    #[test]
    fn the_plan_drops_the_rest_and_keeps_what_we_have() {
        let wanted = 1 | 1 << 21 | 1 << 24;
        let permitted = ((1u64 << 41) - 1) & !(1 << 24);
        let p = plan(wanted, permitted, 40);
        assert_eq!(p.keep, 1 | 1 << 21, "sys_resource is not ours to keep");
        assert_eq!(p.drop_bounding.len(), 41 - 3);
        assert!(!p.drop_bounding.contains(&21) && p.drop_bounding.contains(&16));
        assert_eq!(plan(ALL, permitted, 40).drop_bounding, Vec::<u32>::new());
        assert_eq!(plan(ALL, ALL, 40).keep, (1u64 << 41) - 1);
    }

    #[test]
    fn names_of_a_set() {
        assert_eq!(names(1 | 1 << 21), "cap_chown,cap_sys_admin");
    }
}
