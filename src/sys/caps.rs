//! Our own capability sets: reading them (capget(2)) and reducing them
//! (`PR_CAPBSET_DROP`, capset(2), `PR_CAP_AMBIENT_CLEAR_ALL`), for PID 1 of
//! a container before it starts anything. See `container::caps` for what
//! is kept.

use std::io;

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The highest capability number of the running kernel.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(40)
}

fn get() -> io::Result<[Data; 2]> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: `header` and `data` are the version-3 layout capget(2)
    // expects (a header and two data words); both outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut Header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(data)
}

fn set(data: &[Data; 2]) -> io::Result<()> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    // SAFETY: version-3 header and two data words, valid for the call,
    // which only reads `data`.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Our permitted set.
pub fn permitted() -> io::Result<u64> {
    let data = get()?;
    Ok(u64::from(data[0].permitted) | u64::from(data[1].permitted) << 32)
}

/// Makes every permitted capability effective again: a change of fsuid
/// away from 0 clears the file-system ones (capabilities(7)).
pub fn raise_effective() -> io::Result<()> {
    let mut data = get()?;
    for word in &mut data {
        word.effective = word.permitted;
    }
    set(&data)
}

/// Reduces the calling process's capabilities: `drop_bounding` out of the
/// bounding set first (it needs `CAP_SETPCAP`, which capset may then
/// remove), then effective, permitted and inheritable set to `keep` (one
/// bit per capability), then the ambient set emptied.
pub fn apply(drop_bounding: &[u32], keep: u64) -> io::Result<()> {
    for &cap in drop_bounding {
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        let e = io::Error::last_os_error();
        // EINVAL: a capability this kernel does not know; nothing to drop.
        if rc != 0 && e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    let word = |shift: u32| (keep >> shift) as u32;
    let data = [0, 32].map(|shift| Data {
        effective: word(shift),
        permitted: word(shift),
        inheritable: word(shift),
    });
    set(&data)?;
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
