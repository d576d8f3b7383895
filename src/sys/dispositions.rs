//! Which signals a child must give back their default action before exec.
//!
//! An ignored signal stays ignored across exec, and a handler of tend's
//! would run in a child that still shares tend's memory: the child resets
//! them. Until tend says its dispositions are settled, that is all 62
//! signals a child can reset, one system call each (about 15 µs of every
//! start). `tend init`'s loop settles them once it has set its own: tend
//! asks the kernel which are not at their default, and children reset
//! those alone (SIGPIPE, and whatever tend's launcher left ignored or
//! glibc handles). `tend --` does not: its one child would save what the
//! asking costs.

use std::sync::atomic::{AtomicU64, Ordering};

/// One bit a signal (bit n-1 for signal n): each a child resets.
static TO_RESET: AtomicU64 = AtomicU64::new(u64::MAX);

/// Asks the kernel which signals have a handler or are ignored, and makes
/// children reset those alone. Call once the process's dispositions are
/// set for good; whatever changes one after must call [`unsettle`].
pub fn settle() {
    let mut bits = 0;
    for sig in 1..=libc::SIGRTMAX().min(64) {
        if !is_default(sig) {
            bits |= bit(sig);
        }
    }
    TO_RESET.store(bits, Ordering::Relaxed);
}

/// Makes children reset every signal again (dispositions may change).
pub fn unsettle() {
    TO_RESET.store(u64::MAX, Ordering::Relaxed);
}

/// Whether `sig`'s disposition is the default one. glibc refuses to
/// tell for the signals it keeps for itself (32 and 33), so those are
/// asked of the kernel directly where its `struct sigaction` begins with
/// the handler; elsewhere they count as not default.
fn is_default(sig: i32) -> bool {
    // SAFETY: a zeroed sigaction is valid; with no new action the call
    // only writes the old one into ours.
    let asked = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(sig, std::ptr::null(), &mut old) == 0).then_some(old.sa_sigaction == libc::SIG_DFL)
    };
    asked.unwrap_or_else(|| kernel_says_default(sig))
}

/// The kernel's own answer: its `struct sigaction` starts with the handler
/// on these architectures (0 is `SIG_DFL`), whatever flags a C library
/// added. Two fewer system calls in every child where glibc's two signals
/// are at their default, as they are in tend.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn kernel_says_default(sig: i32) -> bool {
    let mut old = [0u64; 8];
    // SAFETY: no new action: only `old` is written.
    unsafe { rt_sigaction(sig, None, Some(&mut old)) == 0 && old[0] == 0 }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn kernel_says_default(_sig: i32) -> bool {
    false
}

fn bit(sig: i32) -> u64 {
    1u64.checked_shl(sig.wrapping_sub(1) as u32).unwrap_or(0)
}

/// In the child: gives each signal to reset, and `also`, its default
/// action. Async-signal-safe.
///
/// # Safety
/// Only in a child before exec: it changes the dispositions of the
/// process it runs in.
pub(super) unsafe fn reset_in_child(also: &[i32]) {
    let mut bits = TO_RESET.load(Ordering::Relaxed);
    for &sig in also {
        bits |= bit(sig);
    }
    while bits != 0 {
        let sig = bits.trailing_zeros() as i32 + 1;
        bits &= bits - 1;
        if sig != libc::SIGKILL && sig != libc::SIGSTOP && sig <= libc::SIGRTMAX() {
            set_default(sig);
        }
    }
}

/// Resets `sig` to its default action through the raw syscall: libc's
/// `sigaction` refuses the signals it keeps for itself (32 and 33 with
/// glibc), which a launcher may still have left ignored.
///
/// # Safety
/// Async-signal-safe; changes this process's disposition of `sig`.
unsafe fn set_default(sig: i32) {
    // All zeros is SIG_DFL, no flags and an empty mask in the kernel's
    // `struct sigaction` of every architecture.
    rt_sigaction(sig, Some(&[0; 8]), None);
}

/// The raw `rt_sigaction` system call, past libc (which refuses its own
/// signals): `new`, if any, becomes `sig`'s action and the old one goes
/// into `old`. Both are buffers larger than the kernel's `struct
/// sigaction` of any architecture. Async-signal-safe.
///
/// # Safety
/// With `new`, changes this process's disposition of `sig`.
unsafe fn rt_sigaction(sig: i32, new: Option<&[u64; 8]>, old: Option<&mut [u64; 8]>) -> libc::c_long {
    let sigset_size = (libc::SIGRTMAX() as usize + 1) / 8;
    let new = new.map_or(std::ptr::null(), |n| n.as_ptr());
    let old = old.map_or(std::ptr::null_mut(), |o| o.as_mut_ptr());
    libc::syscall(libc::SYS_rt_sigaction, sig, new, old, sigset_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_one_a_signal() {
        assert_eq!(bit(1), 1);
        assert_eq!(bit(libc::SIGPIPE), 1 << 12);
        assert_eq!(bit(64), 1 << 63);
        assert_eq!(bit(65), 0);
        assert_eq!(bit(0), 0);
    }

    /// SIGKILL and SIGSTOP are always at their default; glibc's own
    /// signals, which its `sigaction` will not tell, are asked of the
    /// kernel (a signal no test uses stands in for them, set through the
    /// kernel and given back).
    #[test]
    fn what_the_kernel_says_is_default() {
        assert!(is_default(libc::SIGKILL));
        assert!(is_default(libc::SIGSTOP));
        let spare = libc::SIGRTMAX() - 1;
        assert!(kernel_says_default(spare));
        let ignore = [1u64, 0, 0, 0, 0, 0, 0, 0]; // SIG_IGN, no flags
                                                  // SAFETY: sets and restores a real-time signal no test uses.
        unsafe { rt_sigaction(spare, Some(&ignore), None) };
        let ignored = !kernel_says_default(spare) && !is_default(spare);
        // SAFETY: as above: back to SIG_DFL.
        unsafe { set_default(spare) };
        assert!(ignored, "an ignored signal reads as not default");
        assert!(kernel_says_default(spare));
    }
}
