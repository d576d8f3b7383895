//! The control server's decoder: bytes from a client, split at arbitrary
//! points as the event loop reads them, through the `Framer`, then each
//! line through `parse_request`, as `ctl::server` does.
//!
//! Input: a list of chunks. A byte `n < 0xf0` is followed by a chunk of
//! `n + 1` bytes (fewer at the end); a byte `n >= 0xf0` followed by a byte
//! `b` is a chunk of `(n - 0xef) * 4 KiB` bytes `b`, so that small inputs
//! reach frames longer than `MAX_FRAME`. The stream stops after
//! `2 * MAX_FRAME` bytes (the framer has refused a frame by then).
//!
//! Checks: no panic; the frames and the first error do not depend on how
//! the bytes were split; a frame is at most `MAX_FRAME` bytes with its
//! newline; the framer holds less than `MAX_FRAME` bytes after draining;
//! a parsed request written back parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::ctl::protocol::{parse_request, FrameError, Framer, MAX_FRAME};

fn chunks(data: &[u8]) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut rest = data;
    let mut total = 0;
    while let Some((&n, tail)) = rest.split_first() {
        if total > 2 * MAX_FRAME {
            break;
        }
        if n >= 0xf0 {
            let b = tail.first().copied().unwrap_or(b'x');
            chunks.push(vec![b; usize::from(n - 0xef) * 4096]);
            rest = tail.get(1..).unwrap_or(&[]);
        } else {
            let len = (usize::from(n) + 1).min(tail.len());
            chunks.push(tail[..len].to_vec());
            rest = &tail[len..];
        }
        total += chunks.last().map_or(0, Vec::len);
    }
    chunks
}

/// What the server sees: the frames, then the error that closes the
/// connection, if any.
fn decode<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> (Vec<Vec<u8>>, Option<FrameError>) {
    let mut framer = Framer::default();
    let mut frames = Vec::new();
    for piece in pieces {
        framer.feed(piece);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() < MAX_FRAME && !frame.contains(&b'\n'));
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
        assert!(framer.pending() < MAX_FRAME, "{} bytes held", framer.pending());
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let chunks = chunks(data);
    let (frames, error) = decode(chunks.iter().map(Vec::as_slice));
    let whole: Vec<u8> = chunks.concat();
    let (whole_frames, whole_error) = decode(std::iter::once(whole.as_slice()));
    // Split differently, the same stream: the same frames, or an error no
    // later than with the whole stream at once.
    match (&error, &whole_error) {
        (None, None) => assert_eq!(frames, whole_frames),
        (Some(_), _) => assert!(whole_frames.starts_with(&frames)),
        (None, Some(_)) => panic!("an error only when read at once"),
    }
    for frame in &frames {
        if let Ok(request) = parse_request(frame) {
            let again = serde_json::to_vec(&request).map(|line| parse_request(&line));
            assert!(matches!(&again, Ok(Ok(r)) if *r == request), "{request:?} -> {again:?}");
        }
    }
});
