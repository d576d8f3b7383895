//! A detached machine's own log: what its PID 1 writes to stdout and
//! stderr, kept by its launcher in `NAME.log` beside the machine's socket,
//! bounded in place (past [`CAP`], the older half goes), and read back by
//! PID 1 for `tend ctl -M NAME logs`.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// The most the file holds before its older half is dropped.
pub const CAP: u64 = 512 * 1024;

/// The launcher's side: appends, and keeps the file under [`CAP`].
#[derive(Debug)]
pub struct LogFile {
    file: File,
    size: u64,
}

impl LogFile {
    /// A new empty log at `path` (one left by an earlier machine of the
    /// same name is replaced), and a read-only handle on it for PID 1: the
    /// same file, however often it is cut.
    pub fn create(path: &Path) -> io::Result<(LogFile, File)> {
        let _ = std::fs::remove_file(path);
        let file = File::options()
            .append(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        let reader = File::open(path)?;
        Ok((LogFile { file, size: 0 }, reader))
    }

    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.size = self.size.saturating_add(bytes.len() as u64);
        if self.size > CAP {
            self.keep_newer_half()?;
        }
        Ok(())
    }

    /// In place, so PID 1's handle stays valid: the last half from a line
    /// start, written back at the start of the emptied file.
    fn keep_newer_half(&mut self) -> io::Result<()> {
        let mut kept = vec![0; (CAP / 2) as usize];
        let n = read_full_at(&self.file, &mut kept, self.size.saturating_sub(CAP / 2))?;
        kept.truncate(n);
        let from = kept.iter().position(|&b| b == b'\n').map_or(0, |i| i.saturating_add(1));
        self.file.set_len(0)?;
        let newer = kept.get(from..).unwrap_or_default();
        self.file.write_all(newer)?;
        self.size = newer.len() as u64;
        Ok(())
    }
}

impl LogFile {
    /// The last line written, for a one-line report.
    pub fn last_line(&self) -> Option<String> {
        tail(&self.file, 1).ok()?.pop().filter(|l| !l.trim().is_empty())
    }
}

/// The last `lines` lines of the file (all with `usize::MAX`).
pub fn tail(file: &File, lines: usize) -> io::Result<Vec<String>> {
    let mut bytes = vec![0; (2 * CAP) as usize];
    let n = read_full_at(file, &mut bytes, 0)?;
    let text = String::from_utf8_lossy(&bytes[..n]);
    let all: Vec<&str> = text.lines().collect();
    let skip = all.len().saturating_sub(lines);
    Ok(all[skip..].iter().map(|l| l.to_string()).collect())
}

/// Reads from `offset` until `buf` is full or the file ends.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..).filter(|r| !r.is_empty()) {
        match file.read_at(rest, offset.saturating_add(n as u64)) {
            Ok(0) => break,
            Ok(k) => n = n.saturating_add(k),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_place_and_read_back() {
        let path = std::env::temp_dir().join(format!("tend-log-test-{}", std::process::id()));
        let (mut log, reader) = LogFile::create(&path).unwrap();
        log.append(b"first\nsecond\n").unwrap();
        assert_eq!(tail(&reader, 1).unwrap(), ["second"]);
        assert_eq!(tail(&reader, usize::MAX).unwrap(), ["first", "second"]);
        let line = format!("{}\n", "x".repeat(99));
        for i in 0..20_000 {
            log.append(format!("{i:05} {line}").as_bytes()).unwrap();
        }
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= CAP, "{size}");
        let kept = tail(&reader, usize::MAX).unwrap();
        assert!(kept[0].len() == 105, "cut at a line start: {:?}", kept[0]);
        assert!(kept.last().unwrap().starts_with("19999 "));
        std::fs::remove_file(&path).unwrap();
    }
}
