//! The /etc/subuid and /etc/subgid parser of a rootless boot, and the id
//! maps made from its range. Input: the first line is `USER ID`, the rest
//! is the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::container::namespaces::{map_lines, parse_subid};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, file) = text.split_once('\n').unwrap_or((text, ""));
    let (user, id) = first.split_once(' ').unwrap_or((first, ""));
    let id: u32 = id.trim().parse().unwrap_or(1000);
    let range = parse_subid(file, user, id);
    if let Some(r) = range {
        assert!(r.count > 0, "{r:?}");
    }
    let maps = map_lines(id, range);
    assert_eq!(maps[0], [0, id, 1]);
    assert!(maps.len() <= 2);
});
