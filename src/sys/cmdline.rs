//! What `ps` and `/proc/self/cmdline` show of this process. The kernel
//! reads both from the memory where exec placed the arguments (and
//! `/proc/self/environ` from the environment strings beside them), so the
//! container's PID 1, a clone of its launcher, would show the host's paths
//! of tend and of the rootfs. Rewriting that memory in place, shorter, is
//! what daemons do for their titles; `PR_SET_MM` would need
//! CAP_SYS_RESOURCE.

use std::io;
use std::ops::Range;

/// Where exec placed the arguments and the environment strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    pub args: Range<usize>,
    pub env: Range<usize>,
}

/// Fields 48 to 51 of `/proc/PID/stat` (proc(5)): `arg_start`, `arg_end`,
/// `env_start`, `env_end`. Counted after the command name, which is in
/// parentheses and may itself hold spaces and parentheses.
pub fn parse_regions(stat: &str) -> Option<Regions> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // The first field after the name is field 3 (state).
    let fields: Vec<usize> = rest
        .split_whitespace()
        .skip(45)
        .take(4)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let [arg_start, arg_end, env_start, env_end] = fields[..] else {
        return None;
    };
    (arg_start < arg_end && env_start <= env_end).then_some(Regions {
        args: arg_start..arg_end,
        env: env_start..env_end,
    })
}

/// `args` as the kernel shows them (each ended by a NUL), cut to fit
/// `room` bytes with the last one a NUL, then zeros up to `room`.
pub fn layout(args: &[&str], room: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    bytes.truncate(room.saturating_sub(1));
    bytes.resize(room, 0);
    bytes
}

/// Makes this process's command line read `args`, and blanks its original
/// environment strings.
///
/// Only for a process that no longer reads its arguments (`std::env::args`
/// reads that memory) and that has removed every variable of the
/// environment it was started with (`std::env::remove_var`: what is set
/// afterwards lives on the heap).
pub fn rewrite(args: &[&str]) -> io::Result<()> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let regions = parse_regions(&stat).ok_or_else(|| io::Error::other("unexpected /proc/self/stat"))?;
    let text = layout(args, regions.args.len());
    // SAFETY: both ranges are this process's own argument and environment
    // strings, as the kernel reports them: mapped and writable (the top of
    // the main stack), and borrowed by no Rust value; the caller no longer
    // reads them (see above), and `text` is exactly as long as its range.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), regions.args.start as *mut u8, text.len());
        std::ptr::write_bytes(regions.env.start as *mut u8, 0, regions.env.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_come_after_the_name() {
        let mut fields: Vec<String> = (3..=52).map(|n| n.to_string()).collect();
        fields[0] = "S".into();
        let stat = format!("42 (a) b (c)) {}", fields.join(" "));
        assert_eq!(
            parse_regions(&stat),
            Some(Regions {
                args: 48..49,
                env: 50..51
            })
        );
        assert_eq!(parse_regions("42 (tend) S 1 2"), None);
        assert_eq!(parse_regions("garbage"), None);
    }

    #[test]
    fn layout_fits_the_room() {
        assert_eq!(layout(&["tend", "init"], 12), b"tend\0init\0\0\0");
        assert_eq!(layout(&["tend", "init"], 6), b"tend\0\0");
        assert_eq!(layout(&["tend"], 0), b"");
    }

    #[test]
    fn own_regions_are_found() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let r = parse_regions(&stat).unwrap();
        let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
        assert_eq!(r.args.len(), cmdline.len());
    }
}
