//! The passwd and group parsers (`ROOT/etc/passwd`, `ROOT/etc/group`, read
//! to check a unit's `user` and `group`). Input: the first line picks the
//! parser (`p` passwd, else group); the rest is the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::unit::{parse_group, parse_passwd};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (which, file) = text.split_once('\n').unwrap_or((text, ""));
    if which.starts_with('p') {
        for user in parse_passwd(file) {
            assert!(!user.name.is_empty() && !user.name.contains([':', '\n']), "{user:?}");
        }
    } else {
        for group in parse_group(file) {
            assert!(!group.name.is_empty() && !group.name.contains([':', '\n']), "{group:?}");
            assert!(
                group.members.iter().all(|m| !m.is_empty() && !m.contains([',', ':'])),
                "{group:?}"
            );
        }
    }
});
