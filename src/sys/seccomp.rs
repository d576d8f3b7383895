//! Installing a seccomp filter on the calling process (seccomp(2)),
//! without `PR_SET_NO_NEW_PRIVS`: the container's setuid programs (`su`,
//! `ping`) must keep working. That takes `CAP_SYS_ADMIN` in our user
//! namespace, which PID 1 of a container has until it drops it.

use std::io;

use seccompiler::sock_filter;

/// `struct sock_fprog` of <linux/filter.h>.
#[repr(C)]
struct Program {
    len: libc::c_ushort,
    filter: *const sock_filter,
}

/// Installs `filter` for this process and every child it starts from now on.
pub fn install(filter: &[sock_filter]) -> io::Result<()> {
    let len = libc::c_ushort::try_from(filter.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let program = Program {
        len,
        filter: filter.as_ptr(),
    };
    // SAFETY: `program` points at `len` instructions of `filter`, both
    // alive for the call; the kernel copies them and keeps no pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &program as *const Program,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
