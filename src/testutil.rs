//! Fixture loaders shared by the unit tests: real kernel output (console
//! captures under tests/fixtures/) turned into records and a Tracker.

use crate::kmsg::events::Tracker;
use crate::kmsg::Record;

/// Turns console (`[  39.02] text`) lines into records, numbering them.
pub fn records_from_console(text: &str) -> Vec<Record> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let (stamp, rest) = line.strip_prefix('[')?.split_once("] ")?;
            let usec = (stamp.trim().parse::<f64>().ok()? * 1e6) as u64;
            Some(Record { level: 6, seq: i as u64 + 1, usec, text: rest.to_string() })
        })
        .collect()
}

pub fn track(records: &[Record]) -> Tracker {
    let mut t = Tracker::default();
    for r in records {
        t.feed(r);
    }
    t
}
