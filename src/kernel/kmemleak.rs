//! kmemleak (Documentation/dev-tools/kmemleak.rst): a leaked block group
//! prints nothing by itself; only a kmemleak scan after the unmount finds
//! it. The report parser is pure; `check` drives /sys/kernel/debug/kmemleak.

use std::path::Path;
use std::time::Duration;

/// One `unreferenced object` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    pub address: String,
    pub size: u64,
    pub comm: String,
    /// Backtrace frames, innermost first, without offsets.
    pub frames: Vec<String>,
}

impl Leak {
    pub fn is_btrfs(&self) -> bool {
        self.frames.iter().any(|f| f.starts_with("btrfs_") || f.contains("[btrfs]"))
    }

    /// `unreferenced object 0x... (size 1024) from btrfs_create_block_group_cache <- btrfs_make_block_group`
    pub fn summary(&self) -> String {
        let top: Vec<&str> = self
            .frames
            .iter()
            .map(String::as_str)
            .skip_while(|f| !f.starts_with("btrfs_"))
            .take(3)
            .collect();
        format!("kmemleak: unreferenced object {} (size {}) from {}", self.address, self.size, top.join(" <- "))
    }
}

/// Parses the contents of /sys/kernel/debug/kmemleak.
pub fn parse(text: &str) -> Vec<Leak> {
    let mut leaks: Vec<Leak> = Vec::new();
    let mut in_backtrace = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("unreferenced object ") {
            let address = rest.split_whitespace().next().unwrap_or("").to_string();
            let size = rest
                .split("(size ")
                .nth(1)
                .and_then(|s| s.split(')').next())
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            leaks.push(Leak { address, size, comm: String::new(), frames: Vec::new() });
            in_backtrace = false;
            continue;
        }
        let Some(leak) = leaks.last_mut() else { continue };
        if let Some(rest) = t.strip_prefix("comm \"") {
            leak.comm = rest.split('"').next().unwrap_or("").to_string();
        } else if t.starts_with("backtrace") {
            in_backtrace = true;
        } else if t.starts_with("hex dump") {
            in_backtrace = false;
        } else if in_backtrace && !t.is_empty() {
            // "btrfs_make_block_group+0x9a/0x4b9" or "[<ffff...>] name+0x.."
            let name = t.rsplit("] ").next().unwrap_or(t);
            let name = name.split('+').next().unwrap_or(name).trim();
            if !name.is_empty() {
                leak.frames.push(name.to_string());
            }
        }
    }
    leaks
}

pub const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

/// What a kmemleak check found.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// None: the kernel has no kmemleak (the leak flavour was not checked).
    pub btrfs_objects: Option<u64>,
    /// Summaries of the first few btrfs leaks.
    pub evidence: Vec<String>,
    pub note: Option<String>,
}

/// Forgets what kmemleak already reported, so only this run's leaks count.
/// True when kmemleak is there.
pub fn clear() -> bool {
    Path::new(KMEMLEAK).exists() && std::fs::write(KMEMLEAK, "clear").is_ok()
}

/// Scans twice (an object is reported only when a second scan finds it
/// still unreferenced), reads the report, clears it for the next run.
pub fn check(pause: Duration) -> Found {
    let mut note = None;
    if !Path::new(KMEMLEAK).exists() && Path::new("/sys/kernel/debug").is_dir() {
        // debugfs may simply not be mounted: mount it, and take it away
        // again when this kernel has no kmemleak after all.
        if crate::sys::fs::mount_debugfs().is_ok() {
            if Path::new(KMEMLEAK).exists() {
                note = Some("mounted debugfs on /sys/kernel/debug for kmemleak".to_string());
            } else {
                let _ = crate::sys::fs::umount(Path::new("/sys/kernel/debug"), false);
            }
        }
    }
    if !Path::new(KMEMLEAK).exists() {
        return Found { btrfs_objects: None, evidence: Vec::new(), note };
    }
    for i in 0..2 {
        if let Err(e) = std::fs::write(KMEMLEAK, "scan") {
            return Found { btrfs_objects: None, evidence: Vec::new(), note: Some(format!("write scan to {KMEMLEAK}: {e}")) };
        }
        if i == 0 {
            std::thread::sleep(pause);
        }
    }
    let text = std::fs::read_to_string(KMEMLEAK).unwrap_or_default();
    let _ = std::fs::write(KMEMLEAK, "clear");
    let btrfs: Vec<Leak> = parse(&text).into_iter().filter(Leak::is_btrfs).collect();
    Found {
        btrfs_objects: Some(btrfs.len() as u64),
        evidence: btrfs.iter().take(4).map(Leak::summary).collect(),
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_real_report() {
        let leaks = parse(include_str!("../../tests/fixtures/kmemleak-report.txt"));
        assert_eq!(leaks.len(), 16);
        assert_eq!(leaks[0].size, 1024);
        assert_eq!(leaks[0].comm, "kworker/u8:2");
        assert_eq!(leaks[0].frames[1], "btrfs_create_block_group_cache");
        assert_eq!(leaks[1].size, 192);
        assert!(leaks.iter().all(Leak::is_btrfs));
        assert_eq!(
            leaks[0].summary(),
            format!(
                "kmemleak: unreferenced object {} (size 1024) from btrfs_create_block_group_cache <- btrfs_make_block_group <- btrfs_create_chunk",
                leaks[0].address
            )
        );
    }

    #[test]
    fn leaks_elsewhere_are_not_btrfs() {
        let text = "unreferenced object 0xffff888001 (size 64):\n  comm \"swapper/0\", pid 1, jiffies 1\n  backtrace (crc 0):\n    kmalloc_trace+0x1/0x2\n    acpi_init+0x3/0x4\n";
        let leaks = parse(text);
        assert_eq!(leaks.len(), 1);
        assert!(!leaks[0].is_btrfs());
        assert!(parse("").is_empty());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::testing::fuzz::{run, text, INPUTS};

    const DICTIONARY: [&[u8]; 8] = [
        b"unreferenced object ",
        b"(size ",
        b"comm \"",
        b"backtrace (crc 0):",
        b"hex dump (first 32 bytes):",
        b"[<ffffffff81234567>] ",
        b"btrfs_",
        b" [btrfs]",
    ];

    #[test]
    fn report_parser_never_panics() {
        let fixture = include_str!("../../tests/fixtures/kmemleak-report.txt");
        let make = |rng: &mut fastrand::Rng| text(rng, &[fixture], 20, &DICTIONARY);
        let mut leaks = 0;
        run("kmemleak::parse", 0x6b6d656d6c65616b, make, |input: &String| {
            let found = parse(input);
            let headers = input.lines().filter(|l| l.trim().starts_with("unreferenced object ")).count();
            assert_eq!(found.len(), headers, "one leak per entry");
            for leak in &found {
                let s = leak.summary();
                assert!(s.starts_with("kmemleak: unreferenced object ") && !s.contains('\n'), "{s}");
                assert!(leak.frames.iter().all(|f| !f.is_empty() && !f.contains('+') && f.trim() == f));
                let _ = leak.is_btrfs();
            }
            leaks += found.len();
        });
        assert!(leaks > INPUTS / 5, "the windows must hold entries: {leaks}");
    }
}
