//! The sd_notify datagrams services send (`READY=1`, `STATUS=...`): any
//! bytes, never a panic; a status is one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::runtime::notify::{parse, Notice};

fuzz_target!(|data: &[u8]| {
    for notice in parse(data) {
        if let Notice::Status(text) = notice {
            assert!(!text.contains('\n'), "{text:?}");
        }
    }
});
