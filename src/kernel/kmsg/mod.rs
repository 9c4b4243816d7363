//! /dev/kmsg: the record parser (pure) and a non-blocking reader.
//!
//! Record format (Documentation/ABI/testing/dev-kmsg):
//! `prio,seq,usec,flags[,more fields];text` followed by optional continuation
//! lines that start with a space (`" SUBSYSTEM=..."`).

pub mod events;
mod groups;
pub mod reclaim_loop;
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

/// How many records are missing between the last one read (`last`) and
/// `seq`: sequence numbers count up by one per record, so a jump means the
/// ring buffer overwrote records before we read them.
pub fn seq_gap(last: Option<u64>, seq: u64) -> u64 {
    match last {
        // seq > last, so seq - last >= 1: no overflow, even at u64::MAX.
        Some(last) if seq > last => seq - last - 1,
        _ => 0,
    }
}

/// Reads /dev/kmsg without blocking, from the moment it was opened.
pub struct KmsgReader {
    file: File,
    last_seq: Option<u64>,
    /// Records overwritten in the ring buffer before we read them.
    pub lost: u64,
    /// Reads that failed with anything but EAGAIN, EINTR or EPIPE: `drain`
    /// stops there, and the records after them wait for the next drain.
    pub read_errors: u64,
    /// The last of those errors: the path and the errno text.
    pub last_read_error: Option<String>,
    path: String,
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
        Ok(KmsgReader { file, last_seq: None, lost: 0, read_errors: 0, last_read_error: None, path: path.display().to_string() })
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
                        self.lost += seq_gap(self.last_seq, rec.seq);
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
                Err(e) => {
                    self.read_errors += 1;
                    self.last_read_error = Some(sys::with("read", &self.path)(e).to_string());
                    break;
                }
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

    /// A read error other than EAGAIN/EINTR/EPIPE ends the drain, and is
    /// counted with its errno text (a directory: read fails with EISDIR).
    #[test]
    fn unexpected_read_errors_are_counted() {
        let mut r = KmsgReader::open_path(Path::new("/proc/self")).unwrap();
        assert!(r.drain().is_empty());
        assert!(r.drain().is_empty());
        assert_eq!(r.read_errors, 2);
        let e = r.last_read_error.as_deref().unwrap();
        assert!(e.starts_with("read /proc/self: ") && e.contains("directory"), "{e}");
        assert_eq!(r.lost, 0);
    }

    #[test]
    fn every_record_of_the_host_fixture_parses() {
        let text = include_str!("../../../tests/fixtures/host-6.18-kmsg-records.txt");
        let records: Vec<Record> = text.lines().filter(|l| !l.starts_with('#')).filter_map(parse_record).collect();
        assert_eq!(records.len(), text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count());
        assert!(records.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::testing::fuzz::{mutate, random_bytes, run, INPUTS};

    const DICTIONARY: [&[u8]; 8] = [b"6,", b",-;", b",c;", b",-,caller=T123;", b"\n SUBSYSTEM=usb", b"BO: 97 ", b"12,", b";"];

    /// Real records: the host's, and the console fixtures put into the
    /// /dev/kmsg format.
    fn corpus() -> Vec<String> {
        let mut out: Vec<String> =
            include_str!("../../../tests/fixtures/host-6.18-kmsg-records.txt").lines().filter(|l| !l.starts_with('#')).map(String::from).collect();
        for fixture in [
            include_str!("../../../tests/fixtures/instrumented-reclaim.txt"),
            include_str!("../../../tests/fixtures/kasan-refcount-oops-at-unmount.txt"),
        ] {
            for (i, line) in fixture.lines().enumerate() {
                let text = line.split_once("] ").map_or(line, |(_, t)| t);
                out.push(format!("4,{},{},-;{text}", 1000 + i, 39_000_000 + i));
            }
        }
        out
    }

    /// What one `read` of /dev/kmsg may return, turned into text the way
    /// `drain` does (invalid UTF-8 replaced).
    #[test]
    fn record_parser_never_panics() {
        let corpus = corpus();
        let make = |rng: &mut fastrand::Rng| {
            let bytes = if rng.u8(..4) == 0 {
                random_bytes(rng, 120, &DICTIONARY)
            } else {
                let base = &corpus[rng.usize(..corpus.len())];
                let other = &corpus[rng.usize(..corpus.len())];
                mutate(rng, base.as_bytes(), other.as_bytes(), &DICTIONARY)
            };
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let mut parsed = 0;
        run("kmsg::parse_record", 0x6b6d7367, make, |raw: &String| {
            if let Some(r) = parse_record(raw) {
                parsed += 1;
                assert!(raw.contains(&r.text), "text is part of the input");
                assert!(!r.text.contains('\n'), "continuation lines are dropped");
                assert!(r.level <= 7);
                // The parsed fields are all there is: printed back, the
                // record parses to itself.
                let again = format!("{},{},{},-;{}", r.level, r.seq, r.usec, r.text);
                assert_eq!(parse_record(&again).as_ref(), Some(&r));
            }
        });
        // The mutations must leave many records intact, or the test only
        // exercises the rejection paths.
        assert!(parsed > INPUTS / 4 && parsed < INPUTS, "{parsed} of {INPUTS} parsed");
    }

    /// The reader's loss accounting over arbitrary sequence numbers,
    /// including the last one a u64 holds.
    #[test]
    fn seq_gap_never_panics_and_counts_missing_records() {
        let make = |rng: &mut fastrand::Rng| {
            let start = match rng.u8(..4) {
                0 => u64::MAX - rng.u64(..16),
                1 => rng.u64(..),
                _ => rng.u64(..1000),
            };
            (start, rng.u64(..), rng.u8(..3))
        };
        run("kmsg::seq_gap", 0x736571, make, |&(last, random, how): &(u64, u64, u8)| {
            let seq = match how {
                0 => last.saturating_add(random % 8),
                1 => random,
                _ => last.wrapping_sub(random % 8),
            };
            let gap = seq_gap(Some(last), seq);
            if seq > last {
                assert_eq!(gap, seq - last - 1);
            } else {
                assert_eq!(gap, 0, "a repeated or older record is no loss");
            }
            assert_eq!(seq_gap(None, seq), 0);
        });
    }
}
