//! Parser linearity: every parser of kernel, system and user
//! text timed on inputs of N, 10N and 100N units, as a table of time ratios
//! (~10 and ~100 for linear work). Hostile inputs (put windows opened and
//! never closed, relocations that never end, thousands of pids) sit next to
//! the real-looking ones, because those are what could turn quadratic.
//!
//! Not a timed assertion: times on a shared machine are noise-prone, so the
//! test only prints. `make bench BENCH_ONLY=parsers` runs it, in the release
//! profile:
//!
//!     cargo test --release --bins -- --ignored --nocapture parser_linearity

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::device::signature;
use crate::kernel::kmsg::events::Tracker;
use crate::kernel::kmsg::{self, trace, Record};
use crate::judge::report::{self, Report};
use crate::judge::verdict::{self, Facts};
use crate::base::{mountinfo, size};
use crate::kernel::kmemleak;

/// One row: a parser, what its input is made of, and how to build and time
/// an input of `n` units.
struct Case {
    parser: &'static str,
    input: &'static str,
    n: usize,
    /// The ratio a linear parser shows at 10N: 10, or 1 for work that does
    /// not depend on the input size (the signature probe reads fixed
    /// offsets).
    expect: u32,
    time: fn(usize) -> Duration,
}

/// The fastest of `reps` runs: the others were slowed by someone else.
fn best(reps: usize, mut f: impl FnMut()) -> Duration {
    (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Repetitions for an input of `n` units: fewer for the big ones.
fn reps(n: usize, base: usize) -> usize {
    if n > base * 10 { 3 } else { 7 }
}

fn rec(seq: usize, text: String) -> Record {
    Record { level: 6, seq: seq as u64, usec: seq as u64, text }
}

/// Feeds every record, then judges and prints the verdict (text and JSON):
/// all the work a log causes, from the records to stdout.
fn judge_log(records: &[Record]) {
    let mut t = Tracker::default();
    t.only_device("loop0");
    for r in records {
        t.feed(r);
    }
    let (facts, report) = (Facts::default(), Report::default());
    let v = verdict::judge(&facts, &t);
    black_box(report::text::text(&report, &v, &t, &facts).len());
    black_box(report::json::json(&report, &v, &t, &facts).len());
}

fn time_log(records: Vec<Record>, base: usize) -> Duration {
    best(reps(records.len(), base), || judge_log(&records))
}

/// /dev/kmsg records as read: the host fixture's, renumbered.
fn kmsg_records(n: usize) -> Duration {
    let lines: Vec<&str> = include_str!("../../tests/fixtures/host-6.18-kmsg-records.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(';').map(|(_, t)| t))
        .collect();
    let raw: Vec<String> = (0..n).map(|i| format!("6,{i},{},-;{}\n", i * 1000, lines[i % lines.len()])).collect();
    best(reps(n, 10_000), || {
        for r in &raw {
            black_box(kmsg::parse_record(r));
        }
    })
}

/// One record whose text is n KiB (the kernel caps a record near 1 KiB;
/// a file posing as /dev/kmsg does not).
fn kmsg_one_long_record(n: usize) -> Duration {
    let raw = format!("6,1,2,-;BTRFS info (device loop0): {}\n SUBSYSTEM=block\n", "relocating ".repeat(n * 1024 / 11));
    best(reps(n, 64), || {
        black_box(kmsg::parse_record(&raw));
    })
}

/// The healthy instrumented sequence, one new block group every 8 records.
fn tracker_healthy(n: usize) -> Duration {
    let mut recs = Vec::with_capacity(n);
    for g in 0.. {
        let bg = 1_000_000 + g as u64 * 1024;
        for text in [
            format!("BTRFS info (device loop0): reclaiming chunk {bg} with 12% used 0% reserved 0% unusable"),
            format!("BO: 97 inject enospc... bg {bg}"),
            "BO: 97 reloc put bg".to_string(),
            "BO: 97 reloc put bg done".to_string(),
            format!("BTRFS error (device loop0): error relocating chunk {bg}"),
            "BO: 97 reclaim loop put bg".to_string(),
            "BO: 97 reclaim loop put bg done".to_string(),
            "loop1: detected capacity change from 0 to 6291456".to_string(),
        ] {
            if recs.len() == n {
                return time_log(recs, 10_000);
            }
            recs.push(rec(recs.len(), text));
        }
    }
    unreachable!()
}

/// Hostile: every pid opens a put window on the same block group (reloc and
/// reclaim by turns) and never closes it.
fn tracker_open_windows(n: usize) -> Duration {
    let mut recs = Vec::with_capacity(n);
    for pid in 0.. {
        let put = if pid % 2 == 0 { "reloc put bg" } else { "reclaim loop put bg" };
        for text in [format!("BO: {pid} inject enospc... bg 4096"), format!("BO: {pid} {put}")] {
            if recs.len() == n {
                return time_log(recs, 1_000);
            }
            recs.push(rec(recs.len(), text));
        }
    }
    unreachable!()
}

/// Hostile: n/2 relocations start and none ends, then they fail in the
/// order they started.
fn tracker_relocations_in_flight(n: usize) -> Duration {
    let half = n / 2;
    let started = (0..half).map(|i| format!("BTRFS info (device loop0): relocating block group {} flags data", i * 4096));
    let failed = (0..n - half).map(|i| format!("BTRFS error (device loop0): error relocating chunk {}", i * 4096));
    time_log(started.chain(failed).enumerate().map(|(i, t)| rec(i, t)).collect(), 1_000)
}

/// Hostile: n/2 pids each inject into their own group (never finishing),
/// then those groups' relocations fail.
fn tracker_many_pids(n: usize) -> Duration {
    let half = n / 2;
    let injected = (0..half).map(|i| format!("BO: {} inject enospc... bg {}", i + 1, i * 4096));
    let failed = (0..n - half).map(|i| format!("BTRFS error (device loop0): error relocating chunk {}", i * 4096));
    time_log(injected.chain(failed).enumerate().map(|(i, t)| rec(i, t)).collect(), 1_000)
}

/// Hostile: n different trouble lines (a WARNING with a new address each),
/// all of which the evidence lists once.
fn tracker_distinct_trouble(n: usize) -> Duration {
    let recs = (0..n).map(|i| rec(i, format!("WARNING: CPU: 1 PID: {i} at fs/btrfs/block-group.c:{i} btrfs_put_block_group+0x4d/0x84")));
    time_log(recs.collect(), 1_000)
}

/// The KASAN fixture's splat lines over and over: trouble, frames, chatter.
fn tracker_splats(n: usize) -> Duration {
    let lines: Vec<&str> = include_str!("../../tests/fixtures/kasan-refcount-oops-at-unmount.txt")
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, t)| t))
        .collect();
    time_log((0..n).map(|i| rec(i, lines[i % lines.len()].to_string())).collect(), 10_000)
}

/// The tracefs buffer of a hunt: reclaim, unused and failure lines, the
/// worker's pid changing every group.
fn trace_windows(n: usize) -> Duration {
    const FSID: &str = "5d1a0c8e-3f0b-4a57-9d61-0c2b4f7e9a11";
    let mut text = String::from("# tracer: nop\n");
    for i in 0..n {
        let (pid, bg) = (i / 3, (i / 3) as u64 * 4096);
        text.push_str(&match i % 3 {
            0 => format!("   kworker/u8:1-{pid}     [001] .....   45.100000: btrfs_reclaim_block_group: {FSID}: bg bytenr={bg} len=335544320 used=33554432 flags=1(DATA)\n"),
            1 => format!("   btrfs-transacti-88      [000] .....   45.100100: btrfs_add_unused_block_group: {FSID}: bg bytenr={bg} len=335544320 used=0 flags=1(DATA)\n"),
            _ => format!("   kworker/u8:1-{pid}     [001] .....   45.100200: console: BTRFS error (device vda): error relocating chunk {}\n", bg + 1),
        });
    }
    best(reps(n, 10_000), || {
        black_box(trace::race_windows(&text, FSID));
    })
}

/// /proc/self/mountinfo with n mounts (escaped paths among them).
fn mountinfo_lines(n: usize) -> Duration {
    let text: String = (0..n)
        .map(|i| format!("{} 22 0:{} / /tmp/brr\\040test/m{i} rw,noatime shared:{i} - btrfs /dev/loop{} rw,ssd,space_cache,subvolid=5,subvol=/\n", 40 + i, 40 + i, i % 64))
        .collect();
    best(reps(n, 10_000), || {
        let m = mountinfo::parse(&text);
        black_box(mountinfo::find_by_mount_point(&m, "/tmp/none"));
    })
}

/// One mount whose path is n KiB of `\040` escapes.
fn mountinfo_one_long_path(n: usize) -> Duration {
    let path = "\\040".repeat(n * 256);
    let text = format!("36 22 0:32 / /tmp/{path} rw shared:30 - btrfs /dev/loop0 rw,space_cache\n");
    best(reps(n, 64), || {
        black_box(mountinfo::parse(&text));
    })
}

/// The kmemleak fixture's reports, repeated to n entries.
fn kmemleak_entries(n: usize) -> Duration {
    let fixture = include_str!("../../tests/fixtures/kmemleak-report.txt");
    let per = fixture.matches("unreferenced object ").count().max(1);
    let text = fixture.repeat(n.div_ceil(per));
    best(reps(n, 1_000), || {
        black_box(kmemleak::parse(&text));
    })
}

/// One kmemleak entry with n backtrace frames.
fn kmemleak_one_long_backtrace(n: usize) -> Duration {
    let mut text = String::from("unreferenced object 0xffff8880093a1000 (size 1024):\n  comm \"kworker/u8:2\", pid 33, jiffies 4294898753\n  backtrace (crc 4017fe4d):\n");
    for i in 0..n {
        text.push_str(&format!("    btrfs_frame_{i}+0x4a/0x536\n"));
    }
    best(reps(n, 10_000), || {
        black_box(kmemleak::parse(&text));
    })
}

/// n size strings as users type them.
fn size_strings(n: usize) -> Duration {
    const TYPED: [&str; 8] = ["3G", "512M", "2.5GiB", "1048576", "16T", "900MB", "x", "-1G"];
    let inputs: Vec<String> = (0..n).map(|i| TYPED[i % TYPED.len()].to_string()).collect();
    best(reps(n, 10_000), || {
        for s in &inputs {
            let _ = black_box(size::parse_size(s));
        }
    })
}

/// One size string of n KiB of digits.
fn size_one_long_string(n: usize) -> Duration {
    let s = format!("{}G", "1".repeat(n * 1024));
    best(reps(n, 64), || {
        let _ = black_box(size::parse_size(&s));
    })
}

/// n device heads and tails probed (a btrfs, an ext4, an MBR, nothing).
fn signature_devices(n: usize) -> Duration {
    let mut heads = vec![vec![0u8; signature::PROBE_BYTES]; 4];
    heads[0][0x10040..0x10048].copy_from_slice(b"_BHRfS_M");
    heads[1][0x438..0x43a].copy_from_slice(&[0x53, 0xef]);
    heads[2][510..512].copy_from_slice(&[0x55, 0xaa]);
    heads[2][0x1be + 4] = 0x83;
    let tail = vec![0u8; signature::TAIL_BYTES];
    best(reps(n, 10_000), || {
        for i in 0..n {
            black_box(signature::detect_signature(&heads[i % heads.len()]));
            black_box(signature::detect_tail_signature(&tail, 3 << 30));
        }
    })
}

/// One head of n KiB (a device read whole by mistake): the probe reads
/// fixed offsets, so the time must not grow.
fn signature_one_big_buffer(n: usize) -> Duration {
    let head = vec![0u8; n * 1024];
    best(7, || {
        for _ in 0..1000 {
            black_box(signature::detect_signature(black_box(&head)));
        }
    })
}

const CASES: [Case; 18] = [
    Case { parser: "kmsg::parse_record", input: "records (host fixture)", n: 10_000, expect: 10, time: kmsg_records },
    Case { parser: "kmsg::parse_record", input: "KiB of one record's text", n: 64, expect: 10, time: kmsg_one_long_record },
    Case { parser: "Tracker + judge + report", input: "records, healthy BO: sequence", n: 10_000, expect: 10, time: tracker_healthy },
    Case { parser: "Tracker + judge + report", input: "records, KASAN splat lines", n: 10_000, expect: 10, time: tracker_splats },
    Case { parser: "Tracker + judge + report", input: "records, put windows never closed", n: 1_000, expect: 10, time: tracker_open_windows },
    Case { parser: "Tracker + judge + report", input: "records, relocations never ending", n: 1_000, expect: 10, time: tracker_relocations_in_flight },
    Case { parser: "Tracker + judge + report", input: "records, one pid per injection", n: 1_000, expect: 10, time: tracker_many_pids },
    Case { parser: "Tracker + judge + report", input: "records, distinct trouble lines", n: 1_000, expect: 10, time: tracker_distinct_trouble },
    Case { parser: "trace::race_windows", input: "tracefs lines, new worker pid per group", n: 10_000, expect: 10, time: trace_windows },
    Case { parser: "mountinfo::parse", input: "mounts", n: 10_000, expect: 10, time: mountinfo_lines },
    Case { parser: "mountinfo::parse", input: "KiB of one escaped path", n: 64, expect: 10, time: mountinfo_one_long_path },
    Case { parser: "kmemleak::parse", input: "entries (fixture)", n: 1_000, expect: 10, time: kmemleak_entries },
    Case { parser: "kmemleak::parse", input: "frames of one backtrace", n: 10_000, expect: 10, time: kmemleak_one_long_backtrace },
    Case { parser: "size::parse_size", input: "typed sizes", n: 10_000, expect: 10, time: size_strings },
    Case { parser: "size::parse_size", input: "KiB of digits in one size", n: 64, expect: 10, time: size_one_long_string },
    Case { parser: "signature (head + tail)", input: "devices probed", n: 10_000, expect: 10, time: signature_devices },
    Case { parser: "signature::detect_signature", input: "KiB of head buffer (x1000 probes)", n: 64, expect: 1, time: signature_one_big_buffer },
    Case { parser: "kmsg::parse_record", input: "records (host fixture), again", n: 10_000, expect: 10, time: kmsg_records },
];

/// 100N only when 10N was quick and looked linear: a quadratic parser
/// would take hours there.
const BUDGET_FOR_100N: Duration = Duration::from_secs(2);
const SUPER_LINEAR_AT_10N: f64 = 30.0;

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

#[test]
#[ignore = "prints a table of times: run by make bench (BENCH_ONLY=parsers)"]
fn parser_linearity() {
    // The first row comes again at the end: the two show the noise.
    println!("parser linearity: time of the best of 3-7 runs at N, 10N and 100N input units; a linear parser shows ~10 and ~100 (~1 where the work is fixed)");
    println!();
    println!("| parser | input unit | N | t(N) ms | t(10N) ms | t(10N)/t(N) | t(100N)/t(N) | expected |");
    println!("|---|---|---|---|---|---|---|---|");
    for c in &CASES {
        let t1 = (c.time)(c.n);
        let t10 = (c.time)(c.n * 10);
        let r100 = if ratio(t10, t1) > SUPER_LINEAR_AT_10N {
            "skipped (super-linear at 10N)".to_string()
        } else if t10 > BUDGET_FOR_100N {
            format!("skipped (10N took {:.1} s)", t10.as_secs_f64())
        } else {
            format!("{:.1}", ratio((c.time)(c.n * 100), t1))
        };
        let expect = if c.expect == 1 { "~1, ~1" } else { "~10, ~100" };
        println!("| {} | {} | {} | {} | {} | {:.1} | {r100} | {expect} |", c.parser, c.input, c.n, ms(t1), ms(t10), ratio(t10, t1));
    }
}
