//! Watching the kernel during a run: /dev/kmsg drained into the tracker and
//! the --log file, plus the taint flags.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use crate::events::Tracker;
use crate::kmsg::KmsgReader;

pub struct Watch {
    reader: KmsgReader,
    pub log: Tracker,
    file: Option<File>,
}

/// /proc/sys/kernel/tainted as a bit mask (0 if unreadable).
pub fn taint() -> u64 {
    std::fs::read_to_string("/proc/sys/kernel/tainted").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// WARN_ONCE warnings (all the refcount_t ones) fire once per boot; clearing
/// lets them fire again in this run. Only possible where debugfs is mounted.
pub fn clear_warn_once() -> bool {
    std::fs::write("/sys/kernel/debug/clear_warn_once", "1").is_ok()
}

impl Watch {
    /// Opens /dev/kmsg at its end, and the --log file with its header.
    pub fn start(log_path: Option<&Path>, header: &str) -> io::Result<Watch> {
        let file = match log_path {
            Some(p) => {
                let mut f = File::create(p).map_err(|e| io::Error::new(e.kind(), format!("create log {}: {e}", p.display())))?;
                f.write_all(header.as_bytes())?;
                Some(f)
            }
            None => None,
        };
        Ok(Watch { reader: KmsgReader::open()?, log: Tracker::default(), file })
    }

    /// Reads every new record; returns how many arrived.
    pub fn drain(&mut self) -> usize {
        let records = self.reader.drain();
        for r in &records {
            self.log.feed(r);
            if let Some(f) = &mut self.file {
                let _ = writeln!(f, "{},{};{}", r.seq, r.usec, r.text);
            }
        }
        records.len()
    }

    /// Records lost, unexpected read errors and the last of them, since the
    /// last call: each iteration reads with its own Watch, so the run adds
    /// them up.
    pub fn take_read_trouble(&mut self) -> (u64, u64, Option<String>) {
        let r = &mut self.reader;
        (std::mem::take(&mut r.lost), std::mem::take(&mut r.read_errors), r.last_read_error.take())
    }

    /// Appends text (the verdict) to the --log file.
    pub fn append_to_log(&mut self, text: &str) {
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "\n# verdict\n{text}");
        }
    }
}
