//! Watching the kernel during a run: /dev/kmsg drained into the tracker and
//! the --log file, plus the taint flags.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use crate::kernel::kmsg::events::Tracker;
use crate::kernel::kmsg::KmsgReader;

pub struct Watch {
    reader: KmsgReader,
    pub log: Tracker,
    file: Option<File>,
}

impl Watch {
    /// Opens /dev/kmsg at its end, and the --log file with its header.
    pub fn start(log_path: Option<&Path>, header: &str) -> io::Result<Watch> {
        let file = match log_path {
            Some(p) => {
                let mut f = File::create(p).map_err(crate::sys::with("create log", p))?;
                f.write_all(header.as_bytes()).map_err(crate::sys::with("write log", p))?;
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
