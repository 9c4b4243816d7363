//! The frame that carries the guest's verdict to the host: a named payload
//! with its length and CRC-32C, so a payload cut short or mixed with kernel
//! console output is detected, never believed. The guest writes the frames
//! to a raw virtio disk of their own (nothing else writes there), and on the
//! console when that disk fails; the host takes the first intact copy.

use crate::btrfs::mkfs::crc32c;

const BEGIN: &str = "===BRR-FRAME ";
const END: &str = "===BRR-FRAME-END ";

/// `===BRR-FRAME <name> len=<n> crc32c=<hex>===\n<payload>\n===BRR-FRAME-END <name>===\n`
pub fn encode(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{BEGIN}{name} len={} crc32c={:08x}===\n", payload.len(), crc32c::checksum(payload)).into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(format!("\n{END}{name}===\n").as_bytes());
    out
}

/// What a stream holds of one named frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Intact(Vec<u8>),
    /// Headers were there, but no copy matched its length and checksum.
    Garbled { copies: usize },
    Absent,
}

/// The first intact copy of frame `name` in `stream`: as written (the
/// disk), or, on a console, with the serial line's `\r` before `\n` and
/// whole kernel console lines that came between removed.
pub fn decode(stream: &[u8], name: &str) -> Found {
    let head = format!("{BEGIN}{name} ");
    let mut copies = 0;
    let mut from = 0;
    while let Some(at) = find(&stream[from..], head.as_bytes()).map(|i| i + from) {
        from = at + head.len();
        copies += 1;
        let Some((len, crc, body)) = header(&stream[at + head.len()..]).map(|(l, c, skip)| (l, c, at + head.len() + skip))
        else {
            continue;
        };
        let exact = stream.get(body..body + len);
        if let Some(p) = exact.filter(|p| crc32c::checksum(p) == crc) {
            return Found::Intact(p.to_vec());
        }
        if let Some(p) = console_payload(&stream[body..], name).filter(|p| p.len() == len && crc32c::checksum(p) == crc) {
            return Found::Intact(p);
        }
    }
    if copies == 0 {
        Found::Absent
    } else {
        Found::Garbled { copies }
    }
}

/// `len=<n> crc32c=<hex>===` then `\n` or `\r\n`: (len, crc, bytes to the payload).
fn header(rest: &[u8]) -> Option<(usize, u32, usize)> {
    let nl = rest.iter().take(80).position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&rest[..nl]).ok()?.trim_end_matches('\r');
    let fields = line.strip_suffix("===")?;
    let (len, crc) = fields.split_once(' ')?;
    let len = len.strip_prefix("len=")?.parse().ok()?;
    let crc = u32::from_str_radix(crc.strip_prefix("crc32c=")?, 16).ok()?;
    Some((len, crc, nl + 1))
}

/// The console copy: the lines up to the end marker, less `\r` and kernel
/// console lines (`[    1.234567] ...`, printk's time stamp).
fn console_payload(rest: &[u8], name: &str) -> Option<Vec<u8>> {
    let end = find(rest, format!("{END}{name}===").as_bytes())?;
    let text = &rest[..end];
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if is_kernel_line(line) {
            continue;
        }
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    // The text ends with the "\n" before the end marker, then the split's
    // empty last piece: two newlines too many.
    out.truncate(out.len().checked_sub(2)?);
    Some(out)
}

/// A kernel console line: `[` spaces, seconds, `.`, six digits, `] `.
pub fn is_kernel_line(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"[") else { return false };
    let rest = match rest.iter().position(|&b| b != b' ') {
        Some(i) => &rest[i..],
        None => return false,
    };
    let secs = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let Some(rest) = rest.get(secs..).filter(|_| secs > 0) else { return false };
    let Some(rest) = rest.strip_prefix(b".") else { return false };
    rest.len() >= 8 && rest[..6].iter().all(u8::is_ascii_digit) && rest[6] == b']'
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERDICT: &str = "{\n  \"verdict\": \"NOT_REPRODUCED\",\n  \"exit_code\": 0\n}\n";

    /// How the serial console shows what the guest wrote: `\n` as `\r\n`.
    fn on_console(bytes: &[u8]) -> Vec<u8> {
        String::from_utf8_lossy(bytes).replace('\n', "\r\n").into_bytes()
    }

    #[test]
    fn round_trip_raw_and_on_a_console() {
        let f = encode("stdout", VERDICT.as_bytes());
        assert_eq!(decode(&f, "stdout"), Found::Intact(VERDICT.as_bytes().to_vec()));
        let mut console = b"[    2.000000] Run /init as init process\r\n".to_vec();
        console.extend(on_console(&f));
        assert_eq!(decode(&console, "stdout"), Found::Intact(VERDICT.as_bytes().to_vec()));
        assert_eq!(decode(&console, "exit"), Found::Absent);
        assert_eq!(decode(&encode("exit", b""), "exit"), Found::Intact(vec![]));
    }

    #[test]
    fn kernel_lines_between_the_payload_lines_are_dropped() {
        // Real printk lines (bzImage-instrumented 6.12.117, console at loglevel 7).
        let f = String::from_utf8(encode("stdout", VERDICT.as_bytes())).unwrap();
        let mut lines: Vec<&str> = f.lines().collect();
        lines.insert(2, "[    5.131707] BTRFS info (device vda): last unmount of filesystem 3e1f5e2c-5a4b-4e1a-9c62-8b1b54c7e1a1");
        lines.insert(4, "[    5.140012] BO: 95 reclaim loop put bg done");
        let console = on_console(format!("{}\n", lines.join("\n")).as_bytes());
        assert_eq!(decode(&console, "stdout"), Found::Intact(VERDICT.as_bytes().to_vec()));
    }

    #[test]
    fn corruption_is_detected_and_the_second_copy_wins() {
        let f = encode("stdout", VERDICT.as_bytes());
        let mut bad = f.clone();
        let at = find(&bad, b"NOT_").unwrap();
        bad[at] = b'X';
        assert_eq!(decode(&bad, "stdout"), Found::Garbled { copies: 1 });
        // A printk inside a line cannot be taken out again: garbled.
        let cut = String::from_utf8(f.clone()).unwrap().replace("\"verdict\"", "\"verd[    9.000001] Oops\nict\"");
        assert_eq!(decode(cut.as_bytes(), "stdout"), Found::Garbled { copies: 1 });
        // Cut short (the guest died mid-write).
        assert_eq!(decode(&f[..f.len() / 2], "stdout"), Found::Garbled { copies: 1 });
        let mut twice = bad.clone();
        twice.extend(&f);
        assert_eq!(decode(&twice, "stdout"), Found::Intact(VERDICT.as_bytes().to_vec()));
    }

    #[test]
    fn a_payload_holding_marker_text_and_binary_bytes_survives() {
        let p = b"===BRR-FRAME-END stdout===\n\0\xff[    1.000000] x\n".to_vec();
        assert_eq!(decode(&encode("stdout", &p), "stdout"), Found::Intact(p));
    }

    #[test]
    fn kernel_lines_are_told_from_our_progress_lines() {
        assert!(is_kernel_line(b"[    0.000000] Linux version 6.12.117"));
        assert!(is_kernel_line(b"[12345.123456] x"));
        assert!(!is_kernel_line(b"[   1.2s] mkfs: built-in"));
        assert!(!is_kernel_line(b"{\"verdict\": 1}"));
        assert!(!is_kernel_line(b"[ ]"));
    }
}
