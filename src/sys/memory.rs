//! Giving back what start-up used. PID 1 lives long, and its start-up
//! (parsing the command line, setting up the log, loading units) runs code
//! and fills heap that the event loop never needs again.

/// Hands the heap freed so far back to the kernel, and drops tend's code
/// pages from this process: the loop faults back the few it runs, from the
/// page cache where they stay. Only the executable mapping holding tend's
/// own code is dropped: it is never written, so nothing is lost.
pub fn shed_startup() {
    let code = own_code();
    trim_heap();
    let Some((start, end)) = code else { return };
    let Some(len) = end.checked_sub(start) else { return };
    // SAFETY: [start, end) is a whole mapping of this process, read-only and
    // executable (`r-xp`), backed by the executable file: MADV_DONTNEED only
    // unmaps its pages, and a later access reads them again from the file,
    // unchanged, as no one ever wrote them.
    unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
}

/// Hands the heap's free memory back to the kernel: after a burst (a boot
/// of thousands of services) the allocator keeps what the burst freed.
#[cfg(target_env = "gnu")]
pub fn trim_heap() {
    // SAFETY: malloc_trim only returns free memory of the allocator to the
    // kernel; it touches no allocation in use.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(target_env = "gnu"))]
pub fn trim_heap() {}

/// The `r-xp` mapping that holds this function, from /proc/self/maps.
fn own_code() -> Option<(usize, usize)> {
    let here = own_code as fn() -> Option<(usize, usize)> as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (range, perms) = (fields.next()?, fields.next()?);
        let (start, end) = range.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        (perms == "r-xp" && (start..end).contains(&here)).then_some((start, end))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_its_own_code_and_runs_on_after_shedding_it() {
        let (start, end) = super::own_code().expect("a code mapping");
        assert!(start < end);
        super::shed_startup();
        // Code and data still work: the pages come back on use.
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
