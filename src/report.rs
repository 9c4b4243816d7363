//! The verdict as people and scripts read it: a short text block that stands
//! alone in a mail, and one JSON object.

use crate::events::Tracker;
use crate::json::{self, Object};
use crate::size::human;
use crate::verdict::{Kind, Verdict};

/// Phase names, in the order of the pass; every one appears in `phases`.
pub const PHASES: [&str; 8] = ["mkfs", "mount", "fill", "knobs", "fragment", "trigger", "settle", "unmount"];

/// How many evidence lines the text block shows (all are in --json/--log).
const EVIDENCE_LINES: usize = 8;

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub version: String,
    pub kernel: String,
    pub device: String,
    pub device_bytes: u64,
    pub space_cache: Option<String>,
    pub data_block_group_bytes: Option<u64>,
    pub v1_cache_block_groups: Option<u64>,
    pub fill_mode: String,
    pub fill_percent: f64,
    pub bytes_written: u64,
    pub reclaim_count: u64,
    pub reclaim_errors: u64,
    pub seed: u64,
    pub phases: Vec<(&'static str, f64)>,
    pub total_seconds: f64,
    pub kmsg_lost: u64,
    /// Unexpected /dev/kmsg read errors, and the last one's text.
    pub kmsg_read_errors: u64,
    pub kmsg_read_error: Option<String>,
    /// Seconds from start to the first reclaim_count/reclaim_errors change.
    pub first_reclaim_seconds: Option<f64>,
    pub fill_bytes_per_second: f64,
    /// VmHWM of this process.
    pub peak_rss_kib: u64,
    pub iterations: u32,
    /// Open fds and VmRSS at the end of each iteration.
    pub per_iteration: Vec<crate::resources::Held>,
    /// kmemleak's summaries of leaked btrfs objects.
    pub kmemleak_evidence: Vec<String>,
    /// btrfs objects kmemleak reported; None: no kmemleak in this kernel.
    pub kmemleak: Option<u64>,
    /// Stress mode's counts.
    pub stress: Option<crate::stress::StressStats>,
    /// Things a reader must know: lazy unmounts, what is left mounted.
    pub notes: Vec<String>,
}

/// The kernel log lines that support the verdict: the first trouble and its
/// frames, else the first injected block group's sequence, else the failed
/// relocations.
pub fn evidence(log: &Tracker, r: &Report) -> Vec<String> {
    if log.trouble.is_empty() && !r.kmemleak_evidence.is_empty() {
        return r.kmemleak_evidence.clone();
    }
    if !log.trouble.is_empty() {
        // What went wrong first, then where: every distinct trouble line,
        // then the first splat's frames.
        let mut lines: Vec<String> = Vec::new();
        if let Some(h) = log.headline() {
            lines.push(h.to_string());
        }
        for t in &log.trouble {
            if !lines.contains(t) {
                lines.push(t.clone());
            }
        }
        lines.extend(log.trouble_context.iter().skip(1).cloned());
        lines.extend(r.kmemleak_evidence.iter().cloned());
        return lines;
    }
    let seq = log.first_sequence();
    if !seq.is_empty() {
        return seq;
    }
    log.events.iter().filter(|e| e.kind == crate::events::EventKind::RelocError).map(|e| e.text.clone()).collect()
}

/// The notes, and what the reader of the verdict must know about reading
/// the kernel log.
fn notes(r: &Report) -> Vec<String> {
    let mut out = r.notes.clone();
    if r.kmsg_read_errors > 0 {
        out.push(format!(
            "{} unexpected /dev/kmsg read error(s), last: {}; records after an error were read later or not at all",
            r.kmsg_read_errors,
            r.kmsg_read_error.as_deref().unwrap_or("?")
        ));
    }
    out
}

fn phase_line(r: &Report) -> String {
    let parts: Vec<String> = r.phases.iter().map(|(n, s)| format!("{n} {s:.1}s")).collect();
    format!("{}; total {:.1}s", parts.join(", "), r.total_seconds)
}

/// "634388480 (pid 97), 2647654400 (pid 97)"
fn injected_summary(log: &Tracker) -> String {
    let mut parts = Vec::new();
    for bg in log.injected_groups() {
        let pids: Vec<String> = {
            let mut p: Vec<i32> = log.events.iter().filter(|e| e.bg == Some(bg)).filter_map(|e| e.pid).collect();
            p.dedup();
            p.iter().map(|x| x.to_string()).collect()
        };
        parts.push(format!("{bg} (pid {})", pids.join("/")));
    }
    if parts.len() > 4 {
        let more = parts.len() - 4;
        parts.truncate(4);
        parts.push(format!("+{more} more"));
    }
    parts.join(", ")
}

pub fn text(r: &Report, v: &Verdict, log: &Tracker) -> String {
    let mut out = Vec::new();
    out.push(format!("== btrfs-reclaim-repro {}: {} (exit {}) ==", r.version, v.kind.human_name(), v.exit_code));
    out.push(format!("reason:   {}", v.reason));
    out.push(format!("kernel:   {}", r.kernel));
    if v.kind != Kind::Refused {
        out.push(format!(
            "device:   {} ({}), space cache {}, data block groups {}, {} with a v1 cache inode",
            r.device,
            human(r.device_bytes),
            r.space_cache.as_deref().unwrap_or("?"),
            r.data_block_group_bytes.map(human).unwrap_or_else(|| "?".into()),
            r.v1_cache_block_groups.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
        ));
        out.push(format!(
            "fill:     {:.1}% ({}, {} written), seed {}",
            r.fill_percent,
            r.fill_mode,
            human(r.bytes_written),
            r.seed
        ));
        out.push(format!(
            "reclaim:  {} relocated, {} errors; kmemleak: {}",
            r.reclaim_count,
            r.reclaim_errors,
            match r.kmemleak {
                None => "not in this kernel (leak flavour unchecked)".to_string(),
                Some(n) => format!("{n} btrfs objects"),
            }
        ));
        out.push(format!(
            "log:      {} injections, {} reloc puts, {} reclaim puts, {} overlaps, {} records lost",
            log.injections,
            log.reloc_puts,
            log.reclaim_puts,
            log.overlaps.len(),
            r.kmsg_lost
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
        if let Some(st) = &r.stress {
            out.push(format!(
                "stress:   {} s, worker rounds {:?} ({} ENOSPC), balance tid {}",
                st.seconds,
                st.worker_rounds,
                st.worker_enospc,
                st.balance_tid.map(|t| t.to_string()).unwrap_or_else(|| "?".into())
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
        if r.iterations > 1 {
            let held = match (r.per_iteration.first(), r.per_iteration.last()) {
                (Some(a), Some(b)) => format!(
                    "; open fds {} -> {}, VmRSS {} -> {} KiB (first -> last)",
                    a.open_fds, b.open_fds, a.vm_rss_kib, b.vm_rss_kib
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

pub fn json(r: &Report, v: &Verdict, log: &Tracker, f: &crate::verdict::Facts) -> String {
    let mut o = Object::new();
    o.str("verdict", v.kind.json_name())
        .int("exit_code", v.exit_code)
        .str("reason", &v.reason)
        .str("version", &r.version)
        .str("kernel", &r.kernel)
        .str("device", &r.device)
        .int("device_bytes", r.device_bytes)
        .raw("space_cache", r.space_cache.as_deref().map(json::string).unwrap_or_else(|| "null".into()))
        .raw("data_block_group_bytes", json::opt_u64(r.data_block_group_bytes))
        .raw("v1_cache_block_groups", json::opt_u64(r.v1_cache_block_groups))
        .str("fill_mode", &r.fill_mode)
        .num("fill_percent", r.fill_percent)
        .int("reclaim_count", r.reclaim_count)
        .int("reclaim_errors", r.reclaim_errors)
        .int("injections", log.injections)
        .int("reloc_puts", log.reloc_puts)
        .int("reclaim_puts", log.reclaim_puts)
        .int("overlaps", log.overlaps.len() as u64)
        .raw("evidence", json::array(evidence(log, r).iter().map(|l| json::string(l))))
        .int("kmsg_lost", r.kmsg_lost)
        .int("kmsg_read_errors", r.kmsg_read_errors)
        .raw("kmsg_read_error", r.kmsg_read_error.as_deref().map(json::string).unwrap_or_else(|| "null".into()))
        .int("seed", r.seed);
    o.str("enospc_mode", if f.natural_enospc { "natural" } else { "injected" })
        .str("failure_path", crate::verdict::failure_path(f, log))
        .int("relocation_failures", crate::verdict::relocation_failures(f, log))
        .int("relocation_failures_before_move", log.errors_before_move);
    match f.kmemleak {
        Some(n) => o.int("kmemleak", n),
        None => o.str("kmemleak", "unavailable"),
    };
    match &f.killed_in {
        Some((step, sig)) => {
            let mut k = Object::new();
            k.str("step", step).raw("signal", sig.map(|s| s.to_string()).unwrap_or_else(|| "null".into()));
            o.raw("killed_in", k.finish())
        }
        None => o.raw("killed_in", "null".into()),
    };
    o.str("mode", if r.stress.is_some() { "stress" } else { "single" }).int("iterations", r.iterations.max(1));
    o.raw(
        "per_iteration",
        json::array(r.per_iteration.iter().map(|h| {
            let mut it = Object::new();
            it.int("open_fds", h.open_fds).int("vm_rss_kib", h.vm_rss_kib);
            it.finish()
        })),
    );
    if let Some(st) = &r.stress {
        o.int("stress_seconds", st.seconds)
            .raw("worker_rounds", json::array(st.worker_rounds.iter().map(|n| n.to_string())))
            .int("worker_enospc", st.worker_enospc)
            .int("balances_started", st.balances_started)
            .int("balances_cancelled", st.balances_cancelled)
            .int("balances_busy", st.balances_busy)
            .int("balances_failed", st.balances_failed)
            .int("balance_relocations", st.balance_relocations)
            .raw("balance_tid", st.balance_tid.map(|t| t.to_string()).unwrap_or_else(|| "null".into()));
    }
    let mut phases = Object::new();
    for name in PHASES {
        let secs = r.phases.iter().find(|(n, _)| *n == name).map(|(_, s)| *s).unwrap_or(0.0);
        phases.num(name, secs);
    }
    for (name, secs) in r.phases.iter().filter(|(n, _)| !PHASES.contains(n)) {
        phases.num(name, *secs);
    }
    o.raw("phases", phases.finish())
        .num("total_seconds", r.total_seconds)
        .int("bytes_written", r.bytes_written)
        .raw("first_reclaim_seconds", r.first_reclaim_seconds.map(json::number).unwrap_or_else(|| "null".into()))
        .num("fill_bytes_per_second", r.fill_bytes_per_second)
        .int("peak_rss_kib", r.peak_rss_kib)
        .raw(
            "events",
            json::array(log.events.iter().map(|e| {
                let mut ev = Object::new();
                ev.raw("pid", e.pid.map(|p| p.to_string()).unwrap_or_else(|| "null".into()))
                    .str("kind", e.kind.name())
                    .raw("bg", json::opt_u64(e.bg));
                ev.finish()
            })),
        )
        .raw("notes", json::array(notes(r).iter().map(|n| json::string(n))));
    o.finish() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::tests::{records_from_console, track};
    use crate::verdict::{judge, Facts};

    fn sample() -> (Report, Verdict, Tracker) {
        let log = track(&records_from_console(include_str!("../tests/fixtures/instrumented-reclaim.txt")));
        let facts = Facts {
            space_cache: Some("v1".into()),
            v1_cache_block_groups: Some(9),
            reclaim_count: 8,
            reclaim_errors: 8,
            unmount_observed: true,
            ..Facts::default()
        };
        let v = judge(&facts, &log);
        let r = Report {
            version: "0.1.0 (abc)".into(),
            kernel: "6.12.117".into(),
            device: "/dev/vda".into(),
            device_bytes: 3 << 30,
            space_cache: Some("v1".into()),
            data_block_group_bytes: Some(320 << 20),
            v1_cache_block_groups: Some(9),
            fill_mode: "fallocate".into(),
            fill_percent: 90.2,
            bytes_written: 2 << 30,
            reclaim_count: 8,
            reclaim_errors: 8,
            seed: 42,
            phases: PHASES.iter().map(|p| (*p, 0.5)).collect(),
            total_seconds: 4.0,
            ..Report::default()
        };
        (r, v, log)
    }

    #[test]
    fn text_block_is_short_and_quotes_the_sequence() {
        let (r, v, log) = sample();
        let t = text(&r, &v, &log);
        assert!(t.lines().count() <= 20, "{t}");
        assert!(t.starts_with("== btrfs-reclaim-repro 0.1.0 (abc): NOT REPRODUCED (exit 0) =="));
        assert!(t.contains("BO: 97 inject enospc... bg 634388480"));
        assert!(t.contains("BTRFS error (device vda): error relocating chunk 634388480"));
        assert!(t.contains("BO: 97 reclaim loop put bg done"));
        assert!(t.contains("320 MiB"));
    }

    #[test]
    fn json_has_the_documented_keys() {
        let (r, v, log) = sample();
        let j = json(&r, &v, &log, &Facts::default());
        for key in [
            "verdict", "exit_code", "reason", "version", "kernel", "device_bytes", "space_cache", "data_block_group_bytes",
            "v1_cache_block_groups", "fill_percent", "reclaim_count", "reclaim_errors", "injections", "reloc_puts",
            "reclaim_puts", "overlaps", "evidence", "kmsg_lost", "seed", "phases", "total_seconds", "bytes_written", "events",
            "first_reclaim_seconds", "fill_bytes_per_second", "peak_rss_kib", "kmemleak", "killed_in",
            "kmsg_read_errors", "kmsg_read_error", "per_iteration",
        ] {
            assert!(j.contains(&format!("\"{key}\": ")), "missing {key}");
        }
        assert!(j.contains("\"verdict\": \"NOT_REPRODUCED\""));
        assert!(j.contains("{\"pid\": 97, \"kind\": \"inject\", \"bg\": 634388480}"));
        assert!(j.contains("\"injections\": 8"));
        for p in PHASES {
            assert!(j.contains(&format!("\"{p}\": 0.5")), "phase {p}");
        }
        assert_eq!(j.trim().lines().count(), 1);
    }

    #[test]
    fn per_iteration_fds_and_rss_are_in_the_json_and_the_runs_line() {
        use crate::resources::Held;
        let (mut r, v, log) = sample();
        assert!(json(&r, &v, &log, &Facts::default()).contains("\"per_iteration\": []"));
        r.iterations = 3;
        r.per_iteration = vec![
            Held { open_fds: 7, vm_rss_kib: 2100 },
            Held { open_fds: 7, vm_rss_kib: 2150 },
            Held { open_fds: 8, vm_rss_kib: 2152 },
        ];
        let j = json(&r, &v, &log, &Facts::default());
        assert!(
            j.contains(
                "\"per_iteration\": [{\"open_fds\": 7, \"vm_rss_kib\": 2100}, {\"open_fds\": 7, \"vm_rss_kib\": 2150}, {\"open_fds\": 8, \"vm_rss_kib\": 2152}]"
            ),
            "{j}"
        );
        let t = text(&r, &v, &log);
        assert!(t.contains("runs:     3 iterations on fresh filesystems; open fds 7 -> 8, VmRSS 2100 -> 2152 KiB (first -> last)"), "{t}");
    }

    #[test]
    fn kmsg_read_errors_are_a_note_and_in_the_json() {
        let (mut r, v, log) = sample();
        assert!(!text(&r, &v, &log).contains("read error"));
        assert!(json(&r, &v, &log, &Facts::default()).contains("\"kmsg_read_errors\": 0, \"kmsg_read_error\": null"));
        r.kmsg_read_errors = 3;
        r.kmsg_read_error = Some("read /dev/kmsg: Input/output error (os error 5)".into());
        let t = text(&r, &v, &log);
        assert!(
            t.contains("note:     3 unexpected /dev/kmsg read error(s), last: read /dev/kmsg: Input/output error (os error 5); "),
            "{t}"
        );
        let j = json(&r, &v, &log, &Facts::default());
        assert!(j.contains("\"kmsg_read_errors\": 3, \"kmsg_read_error\": \"read /dev/kmsg: Input/output error (os error 5)\""), "{j}");
        assert!(j.contains("\"notes\": [\"3 unexpected /dev/kmsg read error(s)"), "{j}");
    }
}
