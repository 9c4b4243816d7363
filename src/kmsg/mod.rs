//! /dev/kmsg: the record parser (pure) and a non-blocking reader.
//!
//! Record format (Documentation/ABI/testing/dev-kmsg):
//! `prio,seq,usec,flags[,more fields];text` followed by optional continuation
//! lines that start with a space (`" SUBSYSTEM=..."`).

pub mod events;
pub mod trace;
pub mod watch;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::sys;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// syslog level (prio & 7): 0 emerg .. 7 debug.
    pub level: u8,
    pub seq: u64,
    pub usec: u64,
    pub text: String,
}

/// Parses one record as returned by one `read` of /dev/kmsg. Continuation
/// lines (dictionary key=value pairs) are dropped; unknown comma fields
/// before the `;` (e.g. `caller=T123`) are ignored. Returns None for
/// anything that is not a record.
pub fn parse_record(raw: &str) -> Option<Record> {
    let first = raw.split('\n').next()?;
    let (header, text) = first.split_once(';')?;
    let mut fields = header.split(',');
    let prio: u32 = fields.next()?.trim().parse().ok()?;
    let seq: u64 = fields.next()?.parse().ok()?;
    let usec: u64 = fields.next()?.parse().ok()?;
    // flags field must exist ('-', 'c', ...), even if we do not use it.
    fields.next()?;
    Some(Record { level: (prio & 7) as u8, seq, usec, text: text.to_string() })
}

/// Reads /dev/kmsg without blocking, from the moment it was opened.
pub struct KmsgReader {
    file: File,
    last_seq: Option<u64>,
    /// Records overwritten in the ring buffer before we read them.
    pub lost: u64,
}

impl KmsgReader {
    /// Opens /dev/kmsg and skips everything already in the buffer, so only
    /// this run's records count.
    pub fn open() -> io::Result<Self> {
        Self::open_path(Path::new("/dev/kmsg"))
    }

    pub fn open_path(path: &Path) -> io::Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(sys::with("open", path))?;
        file.seek(SeekFrom::End(0))
            .map_err(sys::with("lseek(SEEK_END)", path))?;
        Ok(KmsgReader { file, last_seq: None, lost: 0 })
    }

    /// Returns every record that arrived since the last call.
    pub fn drain(&mut self) -> Vec<Record> {
        let mut out = Vec::new();
        // A record can be up to ~8 KiB; a shorter buffer makes read fail
        // with EINVAL and the record is lost.
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let raw = String::from_utf8_lossy(&buf[..n]);
                    if let Some(rec) = parse_record(&raw) {
                        if let Some(last) = self.last_seq {
                            if rec.seq > last + 1 {
                                self.lost += rec.seq - last - 1;
                            }
                        }
                        self.last_seq = Some(rec.seq);
                        out.push(rec);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EPIPE: records were overwritten; the next read resumes at
                // the oldest one still there. The seq gap counts them.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                    if self.last_seq.is_none() {
                        self.lost += 1;
                    }
                    continue;
                }
                Err(_) => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_record() {
        let r = parse_record("6,632,6552871603,-;BTRFS info (device loop0): relocating block group 13631488 flags data\n").unwrap();
        assert_eq!(r.level, 6);
        assert_eq!(r.seq, 632);
        assert_eq!(r.usec, 6552871603);
        assert_eq!(r.text, "BTRFS info (device loop0): relocating block group 13631488 flags data");
    }

    #[test]
    fn facility_bits_are_masked_off() {
        // prio 12 = facility 1 (user), level 4 (warning)
        let r = parse_record("12,5,100,-;hello").unwrap();
        assert_eq!(r.level, 4);
    }

    #[test]
    fn continuation_lines_are_dropped() {
        let raw = "3,920,400000,-;usb 1-1: device failed\n SUBSYSTEM=usb\n DEVICE=c189:1\n";
        let r = parse_record(raw).unwrap();
        assert_eq!(r.text, "usb 1-1: device failed");
    }

    #[test]
    fn extra_header_fields_such_as_caller_are_ignored() {
        let r = parse_record("6,1234,5140900,-,caller=T123;BO: 97 reloc put bg").unwrap();
        assert_eq!(r.seq, 1234);
        assert_eq!(r.text, "BO: 97 reloc put bg");
    }

    #[test]
    fn text_may_contain_semicolons_and_commas() {
        let r = parse_record("4,7,8,c;a;b,c").unwrap();
        assert_eq!(r.text, "a;b,c");
    }

    #[test]
    fn malformed_records_are_rejected() {
        for raw in ["", "no header", "x,1,2,-;text", "6,1;text", "6,1,2;text", "6,notanumber,2,-;t", " SUBSYSTEM=usb"] {
            assert!(parse_record(raw).is_none(), "{raw:?} should not parse");
        }
    }

    #[test]
    fn every_record_of_the_host_fixture_parses() {
        let text = include_str!("../../tests/fixtures/host-6.18-kmsg-records.txt");
        let records: Vec<Record> = text.lines().filter(|l| !l.starts_with('#')).filter_map(parse_record).collect();
        assert_eq!(records.len(), text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count());
        assert!(records.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    }
}
