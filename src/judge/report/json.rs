//! The verdict as one JSON object, and the tiny writer that builds it (no
//! serde: three crates only).

use crate::btrfs::fs::Offered;
use crate::kernel::kmsg::events::Tracker;
use crate::base::phase::Phase;
use crate::judge::verdict::{Facts, Verdict};

use super::{evidence, notes, per_minute, PassRecord, Report};

pub fn json(r: &Report, v: &Verdict, log: &Tracker, f: &Facts) -> String {
    let mut o = Object::new();
    o.str("verdict", v.kind.json_name())
        .int("exit_code", v.exit_code())
        .str("reason", &v.reason)
        .raw("next_step", opt_str(v.next_step()))
        .str("version", &r.version)
        .str("kernel", &r.kernel)
        .str("device", &r.device)
        .int("device_bytes", r.device_bytes)
        .str("mkfs", &r.mkfs)
        .raw("space_cache", opt_str(f.space_cache.as_deref()))
        .raw("data_block_group_bytes", opt_int(r.data_block_group_bytes))
        .raw("v1_cache_block_groups", opt_int(f.v1_cache_block_groups))
        .str("fill_mode", r.fill_mode.name())
        .num("fill_percent", r.fill_percent)
        .raw("reclaim_count", counter(f, f.reclaim_count))
        .raw("reclaim_errors", counter(f, f.reclaim_errors))
        .int("injections", log.injections)
        .int("reloc_puts", log.reloc_puts)
        .int("reclaim_puts", log.reclaim_puts)
        .int("overlaps", log.overlaps.len() as u64)
        .raw("evidence", array(evidence(log, r).iter().map(|l| string(l))))
        .int("kmsg_lost", crate::judge::verdict::records_lost(f, log))
        .int("kmsg_read_errors", r.kmsg_read_errors)
        .raw("kmsg_read_error", opt_str(r.kmsg_read_error.as_deref()))
        .int("seed", r.seed);
    if let Some(k) = v.known_bug {
        o.str("known_bug", k.line());
    }
    o.str("enospc_mode", r.enospc_mode.name()).str("reclaim", &r.reclaim.name());
    // Only for --trigger swapfile: the default's output stays as it was.
    if r.trigger != crate::base::phase::Trigger::Knobs {
        o.str("trigger", r.trigger.name()).raw("swapoff", opt_str(r.swapoff.map(super::SwapoffEnd::name)));
    }
    // Only where the kernel lacks dynamic/periodic reclaim: elsewhere
    // `reclaim` alone says it (and the output stays as it was).
    if let Some(offered) = f.offered.filter(|o| *o != Offered::DynamicPeriodic) {
        o.str("reclaim_offered", offered.name());
        if f.counters_from_log {
            o.int("reclaim_attempts_logged", log.reclaiming_chunks);
        }
    }
    if let Some(l) = &f.reclaim_loop {
        let mut lo = Object::new();
        lo.int("bg", l.bg)
            .raw("pid", opt_int(l.pid))
            .int("failed_attempts", l.failed_attempts)
            .int("readds", l.readds)
            .num("seconds", l.seconds)
            .raw("exclusive_operation_busy_seconds", opt_num(f.longest_busy_secs))
            .raw("stopped_by_unmount", f.loop_stopped.map_or("null".into(), |b| b.to_string()));
        o.raw("reclaim_loop", lo.finish());
    }
    o
        .str("mount_options", &r.mount_options)
        .str("failure_path", crate::judge::verdict::failure_path(f, log).name())
        .int("relocation_failures", crate::judge::verdict::relocation_failures(f, log))
        .int("relocation_failures_before_move", log.errors_before_move);
    match f.kmemleak {
        Some(n) => o.int("kmemleak", n),
        None => o.str("kmemleak", "unavailable"),
    };
    match &f.killed_in {
        Some((phase, sig)) => {
            let mut k = Object::new();
            k.str("step", phase.name()).raw("signal", opt_int(sig.map(|s| s.0)));
            o.raw("killed_in", k.finish())
        }
        None => o.raw("killed_in", "null".into()),
    };
    let mode = match (&r.hunt, &r.stress) {
        (Some(_), _) => "hunt",
        (None, Some(_)) => "stress",
        (None, None) => "single",
    };
    o.str("mode", mode).int("iterations", r.iterations.max(1));
    if let Some(h) = &r.hunt {
        o.int("hunt_rounds", h.rounds)
            .int("hunt_rounds_failing", h.rounds_failing)
            .raw("race_windows", opt_int(h.race_windows))
            .raw("race_windows_per_minute", opt_num(h.race_windows.and_then(|n| per_minute(n, h.seconds))))
            .int("rounds_with_window", h.rounds_with_window)
            .raw("first_evidence_seconds", opt_num(h.first_evidence_seconds));
    }
    o.raw(
        "per_iteration",
        array(r.per_iteration.iter().map(|i| {
            let mut it = Object::new();
            it.num("seconds", i.seconds).int("open_fds", i.held.open_fds).int("vm_rss_kib", i.held.vm_rss_kib);
            it.finish()
        })),
    );
    if let Some(st) = &r.stress {
        o.int("stress_seconds", st.seconds)
            .raw("worker_rounds", array(st.worker_rounds.iter().map(|n| n.to_string())))
            .int("worker_enospc", st.worker_enospc)
            .int("balances_started", st.balances_started)
            .int("balances_cancelled", st.balances_cancelled)
            .int("balances_busy", st.balances_busy)
            .int("balances_failed", st.balances_failed)
            .int("balance_relocations", st.balance_relocations)
            .int("failed_groups", st.failed_groups)
            .raw("failed_groups_per_minute", opt_num(per_minute(st.failed_groups, st.seconds as f64)))
            .raw("balance_tid", opt_int(st.balance_tid.map(|t| t.0)))
            .raw("race_windows", opt_int(st.race_windows));
    }
    let mut phases = Object::new();
    for phase in Phase::ALWAYS_REPORTED {
        let secs = r.phases.iter().find(|(p, _)| *p == phase).map(|(_, s)| *s).unwrap_or(0.0);
        phases.num(phase.name(), secs);
    }
    for (phase, secs) in r.phases.iter().filter(|(p, _)| !Phase::ALWAYS_REPORTED.contains(p)) {
        phases.num(phase.name(), *secs);
    }
    o.raw("phases", phases.finish())
        .num("total_seconds", r.total_seconds)
        .int("bytes_written", r.bytes_written)
        .raw("first_reclaim_seconds", opt_num(r.first_reclaim_seconds))
        .num("fill_bytes_per_second", r.fill_bytes_per_second)
        .int("peak_rss_kib", r.peak_rss_kib)
        .raw(
            "events",
            array(log.events.iter().map(|e| {
                let mut ev = Object::new();
                ev.raw("pid", opt_int(e.pid))
                    .str("kind", e.kind.name())
                    .raw("bg", opt_int(e.bg));
                ev.finish()
            })),
        )
        .raw("notes", array(notes(r).iter().map(|n| string(n))))
        .raw("passes", array(r.passes.iter().map(pass)));
    o.finish() + "\n"
}

/// A sysfs counter, or null where the kernel has none (before 6.11): a
/// count from rate-limited log lines is not that counter.
fn counter(f: &Facts, n: u64) -> String {
    if f.counters_from_log { "null".into() } else { n.to_string() }
}

/// One entry of `passes`: the counts of that pass alone.
fn pass(p: &PassRecord) -> String {
    let mut phases = Object::new();
    for (phase, secs) in &p.phases {
        phases.num(phase.name(), *secs);
    }
    let mut o = Object::new();
    o.str("layout", p.layout.name())
        .num("fill_percent", p.fill_percent)
        .raw("reclaim_count", if p.counters_from_log { "null".into() } else { p.reclaim_count.to_string() })
        .raw("reclaim_errors", if p.counters_from_log { "null".into() } else { p.reclaim_errors.to_string() })
        .int("injections", p.injections)
        .int("relocation_failures", p.relocation_failures)
        .raw("phases", phases.finish())
        .raw("settle_end", opt_str(p.settle_end.map(|e| e.name())))
        .raw("settle_tail_seconds", opt_num(p.settle_tail_seconds));
    o.finish()
}

pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn number(v: f64) -> String {
    if v.is_finite() {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s.is_empty() || s == "-" { "0".into() } else { s.to_string() }
    } else {
        "null".into()
    }
}

/// Any integer, or null: bounded like `Object::int` so that nothing which
/// would need quoting can come out bare.
pub fn opt_int(v: Option<impl Into<i128>>) -> String {
    v.map(|n| n.into().to_string()).unwrap_or_else(|| "null".into())
}

pub fn opt_str(v: Option<&str>) -> String {
    v.map(string).unwrap_or_else(|| "null".into())
}

pub fn opt_num(v: Option<f64>) -> String {
    v.map(number).unwrap_or_else(|| "null".into())
}

/// Builds `{"k": v, ...}` from already-encoded values, in insertion order.
#[derive(Default)]
pub struct Object {
    fields: Vec<(String, String)>,
}

impl Object {
    pub fn new() -> Object {
        Object::default()
    }
    pub fn raw(&mut self, key: &str, encoded: String) -> &mut Self {
        self.fields.push((key.to_string(), encoded));
        self
    }
    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.raw(key, string(v))
    }
    pub fn int(&mut self, key: &str, v: impl Into<i128>) -> &mut Self {
        self.raw(key, v.into().to_string())
    }
    pub fn num(&mut self, key: &str, v: f64) -> &mut Self {
        self.raw(key, number(v))
    }
    pub fn finish(&self) -> String {
        let body: Vec<String> = self.fields.iter().map(|(k, v)| format!("{}: {}", string(k), v)).collect();
        format!("{{{}}}", body.join(", "))
    }
}

pub fn array(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_strings() {
        assert_eq!(string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn numbers_are_plain() {
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(f64::NAN), "null");
    }

    #[test]
    fn objects_keep_order() {
        let mut o = Object::new();
        o.str("verdict", "REPRODUCED").int("exit_code", 1).raw("list", array(vec!["1".into(), "2".into()]));
        assert_eq!(o.finish(), "{\"verdict\": \"REPRODUCED\", \"exit_code\": 1, \"list\": [1, 2]}");
    }
}
