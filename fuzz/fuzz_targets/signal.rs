//! Signal names and numbers (`stop-signal`, `tend ctl signal`, `kill`
//! frames): what parses is a real signal, and its name parses back to it.
//! (Found nothing in tend; its first run found this harness's mistake:
//! 32 and 33 have no name.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::signal;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(sig) = signal::parse(text) {
        assert!((1..=signal::rtmax()).contains(&sig), "{text:?} -> {sig}");
        // Numbers without a name (32 and 33, which glibc keeps for itself)
        // are shown as `signal N`, which is for messages only.
        let name = signal::name(sig);
        let shown = name.strip_prefix("signal ").unwrap_or(&name);
        assert_eq!(signal::parse(shown), Some(sig), "{text:?} -> {sig} -> {name}");
    }
    if let Ok(n) = text.trim().parse::<i32>() {
        let _ = signal::name(n);
    }
});
