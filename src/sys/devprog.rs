//! cgroup v2's devices control: a `BPF_PROG_TYPE_CGROUP_DEVICE` program
//! attached to a cgroup decides every mknod and open of a device node by
//! its processes (and those of the cgroups below). tend's program is
//! written here, instruction by instruction, from the rules: a character
//! device whose major, minor and access a rule allows returns 1 (allowed),
//! anything else 0 (EPERM). Attached without `BPF_F_ALLOW_OVERRIDE`, no
//! cgroup below may attach one of its own.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::devcgroup::Rule;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// `bpf_cgroup_dev_ctx.access_type`'s low half: a character device.
const DEVCG_DEV_CHAR: i32 = 2;

/// One instruction: `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const MOV_X: u8 = 0xbf; // dst = src
const MOV_K: u8 = 0xb7; // dst = imm
const AND_K: u8 = 0x57; // dst &= imm
const RSH_K: u8 = 0x77; // dst >>= imm
const JNE_K: u8 = 0x55; // if dst != imm: pc += off
const JLT_K: u8 = 0xa5; // if dst < imm (unsigned): pc += off
const JGT_K: u8 = 0x25; // if dst > imm (unsigned): pc += off
const EXIT: u8 = 0x95; // return r0

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// The offset of a jump at `at` to `to` (counted from the next one).
fn jump(at: usize, to: usize) -> i16 {
    i16::try_from(to as i64 - at as i64 - 1).unwrap_or(i16::MAX)
}

/// The program allowing `rules` (character devices) and nothing else.
/// r1 is the context (`access_type`, `major`, `minor`, u32 each).
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),      // r2 = access_type
        insn(MOV_X, 3, 2, 0, 0),      // r3 = r2
        insn(AND_K, 3, 0, 0, 0xffff), // r3 = the device type
        insn(RSH_K, 2, 0, 0, 16),     // r2 = the access (mknod 1, read 2, write 4)
        insn(LDX_W, 4, 1, 4, 0),      // r4 = major
        insn(LDX_W, 5, 1, 8, 0),      // r5 = minor
    ];
    let type_check = p.len();
    p.push(insn(JNE_K, 3, 0, 0, DEVCG_DEV_CHAR)); // to the end: deny
    for (rule, last) in ranges(rules) {
        let start = p.len();
        let checks = if rule.minor.is_some() || last != rule.major {
            2
        } else {
            1
        };
        let next = start + checks + 5;
        match rule.minor {
            Some(minor) => {
                p.push(insn(JNE_K, 4, 0, jump(start, next), rule.major as i32));
                p.push(insn(JNE_K, 5, 0, jump(start + 1, next), minor as i32));
            }
            None if last != rule.major => {
                p.push(insn(JLT_K, 4, 0, jump(start, next), rule.major as i32));
                p.push(insn(JGT_K, 4, 0, jump(start + 1, next), last as i32));
            }
            None => p.push(insn(JNE_K, 4, 0, jump(start, next), rule.major as i32)),
        }
        p.push(insn(MOV_X, 0, 2, 0, 0)); // r0 = access
        p.push(insn(AND_K, 0, 0, 0, i32::from(!rule.access & 7))); // what the rule does not allow
        let at = p.len();
        p.push(insn(JNE_K, 0, 0, jump(at, next), 0));
        p.push(insn(MOV_K, 0, 0, 0, 1));
        p.push(insn(EXIT, 0, 0, 0, 0));
    }
    let deny = p.len();
    p[type_check].off = jump(type_check, deny);
    p.push(insn(MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// `rules` with runs of whole majors (`c 136:* rw` to `c 143:* rw`, the
/// ptys) as one rule and its last major: fewer instructions for the
/// kernel to verify at every `--privileged` boot.
fn ranges(rules: &[Rule]) -> Vec<(Rule, u32)> {
    let mut out: Vec<(Rule, u32)> = Vec::new();
    for rule in rules {
        match out.last_mut() {
            Some((first, last))
                if rule.minor.is_none()
                    && first.minor.is_none()
                    && first.access == rule.access
                    && last.checked_add(1) == Some(rule.major) =>
            {
                *last = rule.major;
            }
            _ => out.push((*rule, rule.major)),
        }
    }
    out
}

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`.
#[repr(C)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// Loads the program of `rules` and attaches it to the cgroup `dir`: it
/// stays there until the cgroup is removed.
pub fn attach(dir: &Path, rules: &[Rule]) -> io::Result<()> {
    let insns = program(rules);
    let license = c"GPL";
    let mut name = [0u8; 16];
    name[..8].copy_from_slice(b"tend_dev");
    let load = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: 0,
    };
    // SAFETY: `load` is a valid bpf_attr prefix whose size is passed; the
    // instructions and license it points to outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &load as *const LoadAttr,
            std::mem::size_of::<LoadAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this new descriptor; we own it.
    let prog = unsafe { OwnedFd::from_raw_fd(rc as i32) };
    let cgroup = std::fs::File::open(dir)?;
    let attach = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
        replace_bpf_fd: 0,
    };
    // SAFETY: `attach` is a valid bpf_attr prefix whose size is passed; it
    // outlives the call, which only reads it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const AttachAttr,
            std::mem::size_of::<AttachAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program as the kernel would, on a context.
    fn run(p: &[Insn], access_type: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access_type, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                MOV_X => r[dst] = r[src],
                MOV_K => r[dst] = i.imm as i64 as u64,
                AND_K => r[dst] &= i.imm as i64 as u64,
                RSH_K => r[dst] >>= i.imm,
                JNE_K | JLT_K | JGT_K => {
                    let imm = i.imm as i64 as u64;
                    let taken = match i.code {
                        JNE_K => r[dst] != imm,
                        JLT_K => r[dst] < imm,
                        _ => r[dst] > imm,
                    };
                    if taken {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                EXIT => return r[0],
                other => panic!("unexpected code {other:#x}"),
            }
        }
    }

    #[test]
    fn allows_what_the_rules_say_and_nothing_else() {
        let rules = [
            Rule {
                major: 1,
                minor: Some(3),
                access: 7,
            },
            Rule {
                major: 136,
                minor: None,
                access: 6,
            },
        ];
        let p = program(&rules);
        let (mknod, read, write) = (1u32 << 16, 2u32 << 16, 4u32 << 16);
        let (block, char) = (1u32, 2u32);
        assert_eq!(run(&p, char | read | write, 1, 3), 1, "/dev/null");
        assert_eq!(run(&p, char | mknod, 1, 3), 1);
        assert_eq!(run(&p, char | read, 1, 5), 0, "another minor");
        assert_eq!(run(&p, char | read | write, 136, 7), 1, "a pty");
        assert_eq!(run(&p, char | mknod, 136, 7), 0, "no mknod of a pty");
        assert_eq!(run(&p, block | read, 1, 3), 0, "a block device");
        assert_eq!(run(&p, block | read, 8, 0), 0);
        assert_eq!(run(&program(&[]), char | read, 1, 3), 0, "no rule, nothing");
    }

    #[test]
    fn a_run_of_whole_majors_is_one_range() {
        let pty = |major| Rule {
            major,
            minor: None,
            access: 6,
        };
        let mut rules = vec![Rule {
            major: 1,
            minor: Some(3),
            access: 7,
        }];
        rules.extend((136..=143).map(pty));
        let p = program(&rules);
        assert_eq!(p.len(), 7 + 7 + 7 + 2, "the prologue, /dev/null, one range, the denial");
        let (mknod, read, write) = (1u32 << 16, 2u32 << 16, 4u32 << 16);
        let char = 2u32;
        for major in 136..=143 {
            assert_eq!(run(&p, char | read | write, major, 9), 1, "pty major {major}");
            assert_eq!(run(&p, char | mknod, major, 9), 0, "no mknod of a pty");
        }
        assert_eq!(run(&p, char | read, 135, 0), 0, "below the range");
        assert_eq!(run(&p, char | read, 144, 0), 0, "above the range");
        assert_eq!(run(&p, char | read | write, 1, 3), 1, "/dev/null");
        let gap = [pty(136), pty(138)];
        assert_eq!(ranges(&gap).len(), 2, "a gap ends a range");
    }
}
