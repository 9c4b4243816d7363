//! Safe facts about this machine and this process: our version, the
//! kernel's release, taint, btrfs support, capabilities, memory.

pub fn version() -> String {
    format!("{} ({})", env!("CARGO_PKG_VERSION"), env!("BRR_GIT_COMMIT"))
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
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

/// VmHWM (peak resident set) of this process, in KiB.
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    crate::base::resources::status_kib(&status, "VmHWM:").unwrap_or(0)
}

pub fn euid_is_root() -> bool {
    crate::sys::process::euid() == 0
}

pub fn kernel_has_btrfs() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|t| t.lines().any(|l| l.split_whitespace().last() == Some("btrfs")))
        .unwrap_or(false)
}

/// CAP_SYS_ADMIN (bit 21) in the `CapEff:` line of /proc/self/status text;
/// None when there is no such line.
pub fn has_cap_sys_admin(status: &str) -> Option<bool> {
    const CAP_SYS_ADMIN: u32 = 21;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    let caps = u64::from_str_radix(hex, 16).ok()?;
    Some(caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// This process's threads (the `Threads:` line of /proc/self/status); fork
/// is only safe while it is 1.
pub fn thread_count() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("Threads:"))?.trim().parse().ok()
}

/// `thread_count`, once threads that just finished have left. A joined
/// thread is not gone yet: std::thread::scope returns when the closures
/// are done, and even pthread_join returns before the kernel drops the
/// task from `Threads:`. Measured in the VM: the settle after the churn
/// stress was refused a fork ("2 threads") and the run said INCONCLUSIVE.
/// Waits up to 1 s for a count of 1; a thread that is really still there
/// (a bug) stays refused.
pub fn thread_count_settled() -> Option<u64> {
    settle_count(thread_count, std::time::Duration::from_secs(1))
}

fn settle_count(mut count: impl FnMut() -> Option<u64>, wait: std::time::Duration) -> Option<u64> {
    let end = std::time::Instant::now() + wait;
    loop {
        let n = count();
        if n == Some(1) || std::time::Instant::now() >= end {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_count_waits_for_threads_on_their_way_out() {
        let mut seen = [Some(2), Some(2), Some(1), Some(1)].into_iter();
        assert_eq!(settle_count(|| seen.next().flatten(), std::time::Duration::from_secs(5)), Some(1));
        // A thread that stays: the count after the wait, still refused.
        let t = std::time::Instant::now();
        assert_eq!(settle_count(|| Some(2), std::time::Duration::from_millis(30)), Some(2));
        assert!(t.elapsed() >= std::time::Duration::from_millis(30));
        assert_eq!(settle_count(|| None, std::time::Duration::from_millis(5)), None);
    }

    #[test]
    fn reads_cap_sys_admin_from_status() {
        let full = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(has_cap_sys_admin(full), Some(true));
        // setpriv --bounding-set=-sys_admin: bit 21 cleared.
        assert_eq!(has_cap_sys_admin("CapEff:\t000001fffedfffff\n"), Some(false));
        assert_eq!(has_cap_sys_admin("CapEff:\t0000000000000000\n"), Some(false));
        assert_eq!(has_cap_sys_admin("Name:\tx\n"), None);
    }
}
