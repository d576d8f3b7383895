//! The `/proc/self/mountinfo` and `/proc/self/cgroup` parsers that find
//! the cgroup2 hierarchy and tend's own cgroup.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::sys::cgroup::{cgroup2_mount, own_v2_path};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(mount) = cgroup2_mount(text) {
        // Unescaping never makes a path longer than its escaped field.
        assert!(mount.as_os_str().len() <= text.len() * 2, "{mount:?}");
    }
    if let Some(path) = own_v2_path(text) {
        assert!(!path.contains('\n'));
    }
});
