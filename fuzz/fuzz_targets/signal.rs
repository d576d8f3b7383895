//! Signal names and numbers (`stop-signal`, `tend ctl signal`, `kill`
//! frames): what parses is a real signal, and its name parses back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::signal;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(sig) = signal::parse(text) {
        assert!((1..=signal::rtmax()).contains(&sig), "{text:?} -> {sig}");
        let name = signal::name(sig);
        assert_eq!(signal::parse(&name), Some(sig), "{text:?} -> {sig} -> {name}");
    }
    if let Ok(n) = text.trim().parse::<i32>() {
        let _ = signal::name(n);
    }
});
