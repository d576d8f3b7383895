//! The container's default seccomp filter (pure: the list and the BPF
//! program; [`crate::sys::seccomp`] installs it). Built with `seccompiler`.
//!
//! The list starts from the syscalls that Docker's default profile and
//! systemd-nspawn refuse to a container without the matching capability,
//! kept to those that reach the host's kernel-wide state: each entry says
//! why. They fail with EPERM, as if the capability were missing, so
//! programs that probe for them go on. The architecture is checked first:
//! only the x86_64 entry point is let through; a 32-bit (`int 0x80`) call,
//! or an x32 one (syscall number with bit 30 set), gets EPERM whatever it
//! is, so neither can reach a listed call by another number.

use std::collections::BTreeMap;

use seccompiler::{sock_filter, BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// The refused syscalls and why.
pub const DENIED: &[(&str, libc::c_long, &str)] = &[
    (
        "init_module",
        libc::SYS_init_module,
        "loads code into the host's kernel",
    ),
    (
        "finit_module",
        libc::SYS_finit_module,
        "loads code into the host's kernel",
    ),
    ("delete_module", libc::SYS_delete_module, "unloads the host's drivers"),
    ("kexec_load", libc::SYS_kexec_load, "replaces the host's kernel"),
    (
        "kexec_file_load",
        libc::SYS_kexec_file_load,
        "replaces the host's kernel",
    ),
    ("swapon", libc::SYS_swapon, "the host's swap is not the container's"),
    ("swapoff", libc::SYS_swapoff, "the host's swap is not the container's"),
    ("clock_settime", libc::SYS_clock_settime, "the clock is not namespaced"),
    ("clock_adjtime", libc::SYS_clock_adjtime, "the clock is not namespaced"),
    ("settimeofday", libc::SYS_settimeofday, "the clock is not namespaced"),
    (
        "open_by_handle_at",
        libc::SYS_open_by_handle_at,
        "opens any inode of a file system by handle, outside the container's root (\"shocker\")",
    ),
    ("add_key", libc::SYS_add_key, "the kernel keyrings are not namespaced"),
    (
        "request_key",
        libc::SYS_request_key,
        "the kernel keyrings are not namespaced",
    ),
    ("keyctl", libc::SYS_keyctl, "the kernel keyrings are not namespaced"),
    (
        "bpf",
        libc::SYS_bpf,
        "programs in the host's kernel; a frequent exploit path",
    ),
    (
        "perf_event_open",
        libc::SYS_perf_event_open,
        "observes the host; a frequent exploit path",
    ),
    ("syslog", libc::SYS_syslog, "the kernel log is the host's"),
    ("acct", libc::SYS_acct, "process accounting is host-wide"),
    ("iopl", libc::SYS_iopl, "raw access to the host's I/O ports"),
    ("ioperm", libc::SYS_ioperm, "raw access to the host's I/O ports"),
    ("uselib", libc::SYS_uselib, "obsolete; only an attack surface"),
    (
        "lookup_dcookie",
        libc::SYS_lookup_dcookie,
        "obsolete; only an attack surface",
    ),
];

/// `AUDIT_ARCH_X86_64` of <linux/audit.h>.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// `__X32_SYSCALL_BIT`: set in the number of every x32 syscall.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[derive(Debug, thiserror::Error)]
#[error("cannot build the seccomp filter: {0}")]
pub struct Error(String);

/// The filter: the architecture guard, then seccompiler's program.
pub fn program() -> Result<BpfProgram, Error> {
    let rules: BTreeMap<_, _> = crate::sorted::map(DENIED.iter().map(|&(_, nr, _)| (nr, Vec::new())));
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        TargetArch::x86_64,
    )
    .map_err(|e| Error(e.to_string()))?;
    let body: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| Error(e.to_string()))?;
    let mut all = guard();
    all.extend(body);
    Ok(all)
}

/// Refuses (EPERM) every call not made through the x86_64 entry point, and
/// every x32 call; falls through to the next instruction otherwise.
/// seccompiler checks the architecture too, but kills the process; a
/// 32-bit program gets an error here instead.
fn guard() -> Vec<sock_filter> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    // struct seccomp_data: nr at offset 0, arch at offset 4.
    let op = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        op(LD_W_ABS, 0, 0, 4),
        // Not x86_64: to the EPERM two below.
        op(JEQ_K, 0, 2, AUDIT_ARCH_X86_64),
        op(LD_W_ABS, 0, 0, 0),
        // Below the x32 bit: past the EPERM, to seccompiler's program.
        op(JGE_K, 0, 1, X32_SYSCALL_BIT),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_builds_and_starts_with_the_guard() {
        let p = program().unwrap();
        assert!(p.len() > DENIED.len() && p.len() < 4096);
        assert_eq!(p[0].k, 4, "loads the architecture first");
        assert_eq!(p[1].k, AUDIT_ARCH_X86_64);
        assert_eq!(p[3].k, X32_SYSCALL_BIT);
        assert_eq!(p[4].k, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    }

    #[test]
    fn the_issues_list_is_in() {
        for name in [
            "init_module",
            "finit_module",
            "kexec_load",
            "swapon",
            "swapoff",
            "clock_settime",
            "settimeofday",
            "open_by_handle_at",
            "keyctl",
            "bpf",
            "perf_event_open",
            "syslog",
            "acct",
            "iopl",
            "ioperm",
        ] {
            assert!(DENIED.iter().any(|(n, _, _)| *n == name), "{name}");
        }
    }
}
