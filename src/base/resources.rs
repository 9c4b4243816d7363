//! What the process holds at the end of an iteration: open file descriptors
//! and resident memory. A long `--iterations` run must not grow them.

/// Open fds and VmRSS at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    pub open_fds: u64,
    pub vm_rss_kib: u64,
}

/// The value of a `kB` field of /proc/<pid>/status text (`VmRSS:`,
/// `VmHWM:`), in KiB.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let mut words = line[field.len()..].split_whitespace();
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(value)
}

/// This process, now; 0 for what cannot be read.
pub fn held() -> Held {
    // read_dir's own descriptor is in the listing: not counted.
    let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(1).saturating_sub(1);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    Held { open_fds, vm_rss_kib: status_kib(&status, "VmRSS:").unwrap_or(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields_of_proc_status() {
        let status = "Name:\tbtrfs-reclaim-r\nVmPeak:\t    9012 kB\nVmHWM:\t    2140 kB\nVmRSS:\t    1936 kB\nThreads:\t1\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(1936));
        assert_eq!(status_kib(status, "VmHWM:"), Some(2140));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        assert_eq!(status_kib(status, "Threads:"), None, "not a kB field");
        assert_eq!(status_kib("VmRSS:\t huge kB\n", "VmRSS:"), None);
    }

    #[test]
    fn this_process_holds_something() {
        let before = held();
        assert!(before.vm_rss_kib > 0, "{before:?}");
        // stdin/stdout/stderr at least (the test harness keeps them).
        assert!(before.open_fds >= 3, "{before:?}");
        // Other tests open and close files meanwhile: a margin for them.
        let files: Vec<std::fs::File> = (0..100).map(|_| std::fs::File::open("/proc/self/status").unwrap()).collect();
        let after = held().open_fds;
        assert!(after >= before.open_fds + 90, "{before:?} then {after} with 100 more files open");
        drop(files);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::testing::fuzz::{run, text, INPUTS};

    const STATUS: &str = "Name:\tbtrfs-reclaim-r\nUmask:\t0022\nState:\tR (running)\nPid:\t1234\nVmPeak:\t    9012 kB\n\
VmSize:\t    9012 kB\nVmHWM:\t    2140 kB\nVmRSS:\t    1936 kB\nRssAnon:\t     128 kB\nThreads:\t1\n";

    #[test]
    fn status_parser_never_panics() {
        let make = |rng: &mut fastrand::Rng| text(rng, &[STATUS], 6, &[b"VmRSS:", b"VmHWM:", b" kB", b"\t"]);
        let mut found = 0;
        run("resources::status_kib", 0x737461747573, make, |input: &String| {
            for field in ["VmRSS:", "VmHWM:"] {
                if let Some(kib) = status_kib(input, field) {
                    found += 1;
                    assert!(input.contains(field) && input.contains(&kib.to_string()));
                }
            }
        });
        assert!(found > INPUTS / 10, "{found}");
    }
}
