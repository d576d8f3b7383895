//! The env-file parser (`env-file = ...` of a unit): every variable it
//! returns has a valid name, once; every problem names a line of the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::unit::parse_env_file;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (vars, problems) = parse_env_file(text);
    let lines = text.lines().count();
    for (i, (key, _)) in vars.iter().enumerate() {
        let mut chars = key.chars();
        assert!(
            chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_'),
            "{key:?}"
        );
        assert!(chars.all(|c| c.is_ascii_alphanumeric() || c == '_'), "{key:?}");
        assert!(!vars[..i].iter().any(|(k, _)| k == key), "{key:?} twice");
    }
    for (line, problem) in &problems {
        assert!((1..=lines).contains(line), "line {line} of {lines}");
        assert!(!problem.to_string().is_empty());
    }
});
