//! The mail-sized text block: verdict, reason, what ran, the evidence.

use crate::btrfs::fs::Offered;
use crate::kernel::kmsg::events::Tracker;
use crate::base::size::human;
use crate::judge::verdict::{Facts, Kind, Verdict};

use super::{evidence, notes, per_minute, PassRecord, Report, EVIDENCE_LINES};

fn phase_line(r: &Report) -> String {
    let parts: Vec<String> = r.phases.iter().map(|(p, s)| format!("{} {s:.1}s", p.name())).collect();
    format!("{}; total {:.1}s", parts.join(", "), r.total_seconds)
}

/// "634388480 (pid 97), 2647654400 (pid 97)"
fn injected_summary(log: &Tracker) -> String {
    let groups = log.injected_groups();
    // Only the groups shown are looked up: each lookup reads every event.
    let mut parts: Vec<String> = groups
        .iter()
        .take(4)
        .map(|bg| {
            let mut p: Vec<i32> = log.events.iter().filter(|e| e.bg == Some(*bg)).filter_map(|e| e.pid).collect();
            p.dedup();
            let pids: Vec<String> = p.iter().map(|x| x.to_string()).collect();
            format!("{bg} (pid {})", pids.join("/"))
        })
        .collect();
    if groups.len() > 4 {
        parts.push(format!("+{} more", groups.len() - 4));
    }
    parts.join(", ")
}

/// "injected (6 relocated, 0 failed, 0 injected), then natural (...)": the
/// first passes one by one, the rest of a long --iterations run summed, so
/// the block stays mail-sized.
fn passes_summary(passes: &[PassRecord]) -> String {
    const SHOWN: usize = 3;
    let counts = |what: &str, ps: &[PassRecord]| {
        let sum = |f: fn(&PassRecord) -> u64| ps.iter().map(f).sum::<u64>();
        format!("{what} ({} relocated, {} failed, {} injected)", sum(|p| p.reclaim_count), sum(|p| p.relocation_failures), sum(|p| p.injections))
    };
    let shown = if passes.len() > SHOWN + 1 { SHOWN } else { passes.len() };
    let mut each: Vec<String> = passes[..shown].iter().map(|p| counts(p.layout.name(), std::slice::from_ref(p))).collect();
    if shown < passes.len() {
        each.push(counts(&format!("{} more passes", passes.len() - shown), &passes[shown..]));
    }
    each.join(", then ")
}

pub fn text(r: &Report, v: &Verdict, log: &Tracker, f: &Facts) -> String {
    let mut out = Vec::new();
    out.push(format!("== btrfs-reclaim-repro {}: {} (exit {}) ==", r.version, v.kind.human_name(), v.exit_code()));
    out.push(format!("reason:   {}", v.reason));
    if let Some(k) = v.known_bug {
        out.push(format!("known:    {}", k.line()));
    }
    if let Some(next) = v.next_step() {
        out.push(format!("next:     {next}"));
    }
    out.push(format!("kernel:   {}", r.kernel));
    if v.kind != Kind::Refused {
        out.push(format!(
            "device:   {} ({}), mkfs {}, space cache {}, data block groups {}, {} with a v1 cache inode",
            r.device,
            human(r.device_bytes),
            if r.mkfs.is_empty() { "?" } else { &r.mkfs },
            f.space_cache.as_deref().unwrap_or("?"),
            r.data_block_group_bytes.map(human).unwrap_or_else(|| "?".into()),
            f.v1_cache_block_groups.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
        ));
        out.push(format!(
            "fill:     {:.1}% ({}, {} written), seed {}",
            r.fill_percent,
            r.fill_mode.name(),
            human(r.bytes_written),
            r.seed
        ));
        let kmemleak = match f.kmemleak {
            None => "not in this kernel (leak flavour unchecked)".to_string(),
            Some(n) => format!("{n} btrfs objects"),
        };
        if f.counters_from_log {
            out.push(format!(
                "reclaim:  {} attempts, {} errors in the kernel log (no reclaim_count before 6.11; rate-limited lines: at least); kmemleak: {kmemleak}",
                f.reclaim_count, f.reclaim_errors
            ));
        } else {
            out.push(format!("reclaim:  {} relocated, {} errors; kmemleak: {kmemleak}", f.reclaim_count, f.reclaim_errors));
        }
        if let Some(offered) = f.offered.filter(|o| *o != Offered::DynamicPeriodic) {
            out.push(format!("trigger:  the kernel offers {} only; ran {}", offered.name(), r.reclaim.name()));
        }
        if r.trigger == crate::base::phase::Trigger::Swapfile {
            let off = r.swapoff.map_or("never on", super::SwapoffEnd::name);
            out.push(format!("trigger:  swapfile: an active swapfile in a reclaimed data block group (inc_block_group_ro() refuses it: ETXTBSY); swapoff: {off}"));
        }
        out.push(format!(
            "log:      {} injections, {} reloc puts, {} reclaim puts, {} overlaps, {} records lost",
            log.injections,
            log.reloc_puts,
            log.reclaim_puts,
            log.overlaps.len(),
            crate::judge::verdict::records_lost(f, log)
        ));
        let groups = injected_summary(log);
        if !groups.is_empty() {
            out.push(format!("injected: {groups}"));
        }
        let ev = evidence(log, r);
        for (i, line) in ev.iter().take(EVIDENCE_LINES).enumerate() {
            out.push(format!("{}{line}", if i == 0 { "evidence: " } else { "          " }));
        }
        if ev.len() > EVIDENCE_LINES {
            out.push(format!("          ... {} more lines in --log / --json", ev.len() - EVIDENCE_LINES));
        }
        if let Some(h) = &r.hunt {
            let windows = match h.race_windows {
                Some(n) => {
                    let rate = per_minute(n, h.seconds).map(|r| format!(" ({r}/min)")).unwrap_or_default();
                    format!("race windows {n}{rate} (in {} rounds)", h.rounds_with_window)
                }
                None => "race windows not counted (no tracefs events)".to_string(),
            };
            out.push(format!(
                "hunt:     {} rounds ({} with failing relocations), {windows}, reclaim {}",
                h.rounds, h.rounds_failing, r.reclaim.name()
            ));
        }
        if let Some(st) = &r.stress {
            out.push(format!(
                "stress:   {} s, worker rounds {:?} ({} ENOSPC), {} block groups failed relocation{}, balance tid {}{}",
                st.seconds,
                st.worker_rounds,
                st.worker_enospc,
                st.failed_groups,
                per_minute(st.failed_groups, st.seconds as f64).map(|r| format!(" ({r}/min)")).unwrap_or_default(),
                st.balance_tid.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                st.race_windows.map(|n| format!(", race windows {n}")).unwrap_or_default()
            ));
            out.push(format!(
                "balance:  {} started, {} cancelled, {} busy, {} failed{}; {} block groups relocated by balance",
                st.balances_started,
                st.balances_cancelled,
                st.balances_busy,
                st.balances_failed,
                st.balance_last_error.as_deref().map(|e| format!(" (last: {e})")).unwrap_or_default(),
                st.balance_relocations
            ));
        }
        if r.passes.len() > 1 {
            out.push(format!("passes:   {}", passes_summary(&r.passes)));
        }
        if r.iterations > 1 {
            let held = match (r.per_iteration.first(), r.per_iteration.last()) {
                (Some(a), Some(b)) => format!(
                    "; open fds {} -> {}, VmRSS {} -> {} KiB (first -> last)",
                    a.held.open_fds, b.held.open_fds, a.held.vm_rss_kib, b.held.vm_rss_kib
                ),
                _ => String::new(),
            };
            out.push(format!("runs:     {} iterations on fresh filesystems{held}", r.iterations));
        }
        out.push(format!("phases:   {}", phase_line(r)));
    }
    for n in notes(r) {
        out.push(format!("note:     {n}"));
    }
    out.join("\n") + "\n"
}
