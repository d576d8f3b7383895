//! Capturing a service's output: bytes from a pipe split into lines, each
//! printed with the service's name and kept in a bounded per-service buffer.
//! `Lines` and `Ring` are pure; the loop feeds them what it read.

use std::collections::VecDeque;

/// Longest line kept whole; a longer one is cut into pieces of this size,
/// so a service writing without newlines cannot grow tend's memory.
pub const MAX_LINE: usize = 4096;

/// Splits a byte stream into lines (without their newline).
#[derive(Debug, Default)]
pub struct Lines {
    /// Boxed, and made at the first byte: one word for each of the
    /// thousands of pipes that never carry a line (a `Vec` is three).
    #[allow(clippy::box_collection)]
    partial: Option<Box<Vec<u8>>>,
}

impl Lines {
    /// Appends `bytes` and moves every complete line into `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        let partial = self.partial.get_or_insert_with(Default::default);
        for &b in bytes {
            if b == b'\n' {
                out.push(take(partial));
            } else {
                partial.push(b);
                if partial.len() >= MAX_LINE {
                    out.push(take(partial));
                }
            }
        }
    }

    /// At end of stream: the last line, if it had no newline.
    pub fn finish(&mut self) -> Option<String> {
        let partial = self.partial.as_mut()?;
        (!partial.is_empty()).then(|| take(partial))
    }
}

fn take(partial: &mut Vec<u8>) -> String {
    let line = String::from_utf8_lossy(partial).into_owned();
    partial.clear();
    line
}

/// The last `capacity` lines of a service, with a running count so that
/// followers can tell which lines are new.
#[derive(Debug)]
pub struct Ring {
    lines: VecDeque<String>,
    capacity: usize,
    total: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring {
            lines: VecDeque::new(),
            capacity,
            total: 0,
        }
    }

    pub fn push(&mut self, line: String) {
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        if self.capacity > 0 {
            self.lines.push_back(line);
        }
        self.total = self.total.saturating_add(1);
    }

    /// The last `n` lines kept.
    pub fn tail(&self, n: usize) -> impl Iterator<Item = &String> {
        self.lines.iter().skip(self.lines.len().saturating_sub(n))
    }

    /// How many lines it keeps at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many lines were ever pushed.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_across_reads() {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        lines.feed(b"one\ntw", &mut out);
        lines.feed(b"o\n\nthree", &mut out);
        assert_eq!(out, ["one", "two", ""]);
        assert_eq!(lines.finish().as_deref(), Some("three"));
        assert_eq!(lines.finish(), None);
    }

    #[test]
    fn endless_line_is_cut() {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        lines.feed(&vec![b'x'; MAX_LINE * 2 + 10], &mut out);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|l| l.len() == MAX_LINE));
        assert_eq!(lines.finish().map(|l| l.len()), Some(10));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut out = Vec::new();
        Lines::default().feed(b"a\xffb\n", &mut out);
        assert_eq!(out, ["a\u{fffd}b"]);
    }

    #[test]
    fn ring_keeps_the_last_lines() {
        let mut ring = Ring::new(3);
        for i in 0..5 {
            ring.push(i.to_string());
        }
        assert_eq!(ring.tail(10).cloned().collect::<Vec<_>>(), ["2", "3", "4"]);
        assert_eq!(ring.tail(1).cloned().collect::<Vec<_>>(), ["4"]);
        assert_eq!(ring.total(), 5);
    }
}
