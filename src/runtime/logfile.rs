//! A service's captured output written by tend to a file
//! (`stdout = { file = .., max-size = .., max-files = .. }`), rotated as
//! logrotate does: before a line would make the file larger than
//! `max-size`, `path.N-1` becomes `path.N` (the oldest, `path.N`, is
//! overwritten), …, `path` becomes `path.1`, and a new `path` is started.
//! A regular file never waits for a reader; a write that fails (a full
//! disk) loses its lines, counted and noted in the file once writing works
//! again.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::sys::describe;
use crate::unit::FileLog;

#[derive(Debug)]
pub struct LogFile {
    spec: FileLog,
    file: Option<File>,
    /// Bytes in the current file.
    size: u64,
    /// Lines lost to failed writes since the last that worked.
    lost: u64,
}

impl LogFile {
    /// Opens (or creates) the file for appending.
    pub fn open(spec: &FileLog) -> Result<LogFile, String> {
        let file = append(&spec.path).map_err(|e| format!("cannot open {}: {}", spec.path.display(), describe(&e)))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogFile {
            spec: spec.clone(),
            file: Some(file),
            size,
            lost: 0,
        })
    }

    pub fn spec(&self) -> &FileLog {
        &self.spec
    }

    /// Appends `lines` (each without its newline), rotating where one
    /// would not fit.
    pub fn write<'a>(&mut self, lines: impl IntoIterator<Item = &'a str>) {
        let mut chunk = Vec::new();
        for line in lines {
            let len = (line.len() as u64).saturating_add(1);
            let full = self.spec.max_size.is_some_and(|max| {
                let size = self.size.saturating_add(chunk.len() as u64);
                size > 0 && size.saturating_add(len) > max
            });
            if full {
                self.append(&chunk);
                chunk.clear();
                self.rotate();
            }
            chunk.extend_from_slice(line.as_bytes());
            chunk.push(b'\n');
        }
        self.append(&chunk);
    }

    fn append(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.lost > 0 {
            let note = format!("tend: {} lines lost (cannot write this file)\n", self.lost);
            if self.put(note.as_bytes()) {
                self.lost = 0;
            }
        }
        if !self.put(bytes) {
            let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
            self.lost = self.lost.saturating_add(lines);
        }
    }

    fn put(&mut self, bytes: &[u8]) -> bool {
        let Some(file) = self.file.as_mut() else {
            return false;
        };
        match file.write_all(bytes) {
            Ok(()) => {
                self.size = self.size.saturating_add(bytes.len() as u64);
                true
            }
            Err(_) => false,
        }
    }

    /// Moves each file one number up and starts a new one.
    fn rotate(&mut self) {
        self.file = None;
        for (from, to) in rotation(&self.spec.path, self.spec.max_files) {
            match to {
                Some(to) => drop(std::fs::rename(&from, &to)),
                None => drop(std::fs::remove_file(&from)),
            }
        }
        match append(&self.spec.path) {
            Ok(file) => {
                self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
                self.file = Some(file);
            }
            Err(e) => tracing::warn!("cannot open {}: {}", self.spec.path.display(), describe(&e)),
        }
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// The renames of one rotation, in order (`None`: remove): with
/// `max_files` 0 the file is removed; else `path.N-1` → `path.N`, …,
/// `path` → `path.1`.
pub fn rotation(path: &Path, max_files: u32) -> Vec<(PathBuf, Option<PathBuf>)> {
    let numbered = |n: u32| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    if max_files == 0 {
        return vec![(path.to_path_buf(), None)];
    }
    let mut steps: Vec<(PathBuf, Option<PathBuf>)> = (1..max_files)
        .rev()
        .map(|n| (numbered(n), Some(numbered(n.saturating_add(1)))))
        .collect();
    steps.push((path.to_path_buf(), Some(numbered(1))));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_moves_each_file_up_oldest_last() {
        let p = Path::new("/var/log/web.log");
        let steps = rotation(p, 3);
        let shown: Vec<String> = steps
            .iter()
            .map(|(a, b)| {
                format!(
                    "{} -> {}",
                    a.display(),
                    b.as_ref().map_or("-".into(), |b| b.display().to_string())
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                "/var/log/web.log.2 -> /var/log/web.log.3",
                "/var/log/web.log.1 -> /var/log/web.log.2",
                "/var/log/web.log -> /var/log/web.log.1",
            ]
        );
        assert_eq!(rotation(p, 0), [(p.to_path_buf(), None)]);
    }

    #[test]
    fn rotates_at_its_size_keeping_max_files() {
        let dir = std::env::temp_dir().join(format!("tend-logfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.log");
        let spec = FileLog {
            path: path.clone(),
            max_size: Some(100),
            max_files: 2,
            tee: false,
        };
        let mut log = LogFile::open(&spec).unwrap();
        // 10 lines of 10 bytes fill one file exactly
        let lines: Vec<String> = (0..45).map(|i| format!("line {i:04}")).collect();
        log.write(lines.iter().map(String::as_str));
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert_eq!(read("out.log").lines().count(), 5);
        assert_eq!(read("out.log.1").lines().next(), Some("line 0030"));
        assert_eq!(read("out.log.2").lines().next(), Some("line 0020"));
        assert_eq!(read("out.log.1").len(), 100);
        assert!(!dir.join("out.log.3").exists(), "the oldest is dropped");
        // a line longer than max-size gets a file of its own
        let long = "x".repeat(150);
        log.write([long.as_str(), "after"]);
        assert_eq!(read("out.log"), "after\n");
        assert_eq!(read("out.log.1"), format!("{long}\n"));
        // reopening continues with the size on disk
        let mut log = LogFile::open(&spec).unwrap();
        log.write(["0123456789".repeat(9).as_str()]);
        assert_eq!(read("out.log").len(), 97);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
