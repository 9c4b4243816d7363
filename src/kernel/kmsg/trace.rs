//! tracefs, for the hunt's `race_windows`: the btrfs tracepoints
//! `btrfs_reclaim_block_group` (btrfs_reclaim_bgs_work, right before
//! btrfs_relocate_chunk) and `btrfs_add_unused_block_group`
//! (btrfs_mark_bg_unused), plus `printk:console`, which printk_sprint()
//! emits synchronously: the `error relocating chunk` line lands in the same
//! buffer, on the same clock, as the two tracepoints.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::kernel::kmsg::events::{classify, number_after, Line};
use crate::sys;

const EVENTS: [&str; 3] =
    ["btrfs/btrfs_reclaim_block_group", "btrfs/btrfs_add_unused_block_group", "printk/console"];

/// What the endless-loop watch needs (kmsg::reclaim_loop): the worker's
/// attempts, every add to reclaim_bgs, and the error lines on the same clock.
pub const LOOP_EVENTS: [&str; 3] =
    ["btrfs/btrfs_reclaim_block_group", "btrfs/btrfs_add_reclaim_block_group", "printk/console"];

/// The tracing directory with our events enabled; disables them again
/// when dropped.
pub struct Tracing {
    dir: PathBuf,
    events: Vec<&'static str>,
}

impl Tracing {
    /// None when this kernel has no tracefs or lacks one of the events:
    /// the hunt then reports `race_windows` as null ("not counted").
    pub fn start() -> io::Result<Option<Tracing>> {
        Tracing::start_events(&EVENTS)
    }

    /// Tracing of `events`, or None where one of them is missing.
    pub fn start_events(events: &'static [&'static str]) -> io::Result<Option<Tracing>> {
        Tracing::start_in(&[Path::new("/sys/kernel/tracing"), Path::new("/sys/kernel/debug/tracing")], events)
    }

    /// `start` on the first of `dirs` that has all the events (a test
    /// hands in a directory of its own).
    fn start_in(dirs: &[&Path], events: &'static [&'static str]) -> io::Result<Option<Tracing>> {
        let Some(dir) =
            dirs.iter().map(|d| d.to_path_buf()).find(|d| events.iter().all(|e| d.join("events").join(e).join("enable").exists()))
        else {
            return Ok(None);
        };
        let t = Tracing { dir, events: events.to_vec() };
        // A burst of BO: lines between two reads must fit: 4 MiB a CPU.
        t.write("buffer_size_kb", "4096")?;
        for e in events {
            t.write(&format!("events/{e}/enable"), "1")?;
        }
        t.write("tracing_on", "1")?;
        t.clear()?;
        Ok(Some(t))
    }

    /// Enables one more event where the kernel has it; whether it did.
    pub fn also(&mut self, event: &'static str) -> bool {
        let on = self.dir.join("events").join(event).join("enable").exists() && self.write(&format!("events/{event}/enable"), "1").is_ok();
        if on {
            self.events.push(event);
        }
        on
    }

    fn write(&self, file: &str, value: &str) -> io::Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, value).map_err(sys::with("write", &path))
    }

    pub fn clear(&self) -> io::Result<()> {
        self.write("trace", "")
    }

    /// The buffer as text (reading `trace` does not consume it).
    pub fn read(&self) -> io::Result<String> {
        let path = self.dir.join("trace");
        std::fs::read_to_string(&path).map_err(sys::with("read", &path))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Tracing {
    fn drop(&mut self) {
        for e in &self.events {
            let _ = self.write(&format!("events/{e}/enable"), "0");
        }
    }
}

/// One trace line that matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The reclaim worker (this task id) starts relocating `bg`.
    Reclaim { pid: i32, bg: u64 },
    /// `bg` went onto unused_bgs (its last extent was freed).
    Unused { bg: u64 },
    /// `error relocating chunk <bg>`: that attempt failed.
    Failed { bg: u64 },
    /// `BO: <pid> reclaim loop put bg` (instrumented kernels): the worker
    /// is past `next:`, where the kernel before 48f091fd50b2 linked a
    /// failed group onto its retry list.
    LoopPut { pid: i32 },
}

/// `  kworker/u8:3-97  [001] ..... 45.1: btrfs_reclaim_block_group: <fsid>: bg bytenr=N ...`
fn parse(line: &str, fsid: &str) -> Option<Seen> {
    let number = |marker: &str| number_after(line, marker);
    if let Some((_, text)) = line.split_once(" console: ") {
        // Not classify's RelocError: that wants the text to start with
        // "BTRFS", and a console line with anything before it would then
        // end no window.
        if let Some(bg) = number("error relocating chunk ") {
            return Some(Seen::Failed { bg });
        }
        return match classify(text) {
            Line::ReclaimPut { pid } => Some(Seen::LoopPut { pid }),
            _ => None,
        };
    }
    if !line.contains(fsid) {
        return None;
    }
    if line.contains(" btrfs_reclaim_block_group: ") {
        // The task is "comm-pid" before the CPU field.
        let task = line.split(" [").next()?.trim();
        let pid = task.rsplit_once('-')?.1.parse().ok()?;
        return Some(Seen::Reclaim { pid, bg: number("bytenr=")? });
    }
    if line.contains(" btrfs_add_unused_block_group: ") {
        return Some(Seen::Unused { bg: number("bytenr=")? });
    }
    None
}

/// One relocation attempt of the reclaim worker.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    pid: i32,
    /// The group went onto unused_bgs since the attempt began.
    emptied: bool,
    /// Its `error relocating chunk` line came.
    failed: bool,
    /// Already counted as a window.
    counted: bool,
}

/// Race windows in one trace: a block group that went onto unused_bgs after
/// the worker started relocating it, in an attempt that failed, before the
/// worker reached `next:`. Between the two, btrfs_reclaim_bgs_work() has
/// taken it off its list (list_del_init); at `next:` the kernel before
/// 48f091fd50b2 puts it on the retry list without looking, while it sits on
/// unused_bgs. The window ends at the worker's `BO: <pid> reclaim loop put
/// bg` line, printed right after `next:` (instrumented kernels); without
/// that line it ends at `error relocating chunk`, which comes a little
/// earlier (on the test VM's serial console the printk itself took 2.5 ms
/// of that gap, and a hit landed there). A group emptied after `next:` is
/// no window: it is then on the retry list, and btrfs_mark_bg_unused()
/// moves it from there to unused_bgs with its reference. Returns the
/// groups, one entry per window, in the order their windows were known.
pub fn race_windows(trace: &str, fsid: &str) -> Vec<u64> {
    let mut attempts: HashMap<u64, Attempt> = HashMap::new();
    // worker pid -> the group of its latest attempt: finding a worker's
    // earlier attempt must not read every attempt (a new kworker pid per
    // group would make that quadratic).
    let mut latest: HashMap<i32, u64> = HashMap::new();
    let mut found = Vec::new();
    for line in trace.lines().filter(|l| !l.starts_with('#')) {
        match parse(line, fsid) {
            Some(Seen::Reclaim { pid, bg }) => {
                // The worker moved on: its earlier group's attempt is over
                // (unless another worker has taken that group since).
                if let Some(old) = latest.insert(pid, bg) {
                    if attempts.get(&old).is_some_and(|a| a.pid == pid) {
                        attempts.remove(&old);
                    }
                }
                attempts.insert(bg, Attempt { pid, emptied: false, failed: false, counted: false });
            }
            Some(Seen::Unused { bg }) => {
                if let Some(a) = attempts.get_mut(&bg) {
                    a.emptied = true;
                }
            }
            Some(Seen::Failed { bg }) => {
                // Emptied before the failure: a window whatever follows.
                if let Some(a) = attempts.get_mut(&bg).filter(|a| !a.failed) {
                    a.failed = true;
                    if a.emptied {
                        a.counted = true;
                        found.push(bg);
                    }
                }
            }
            Some(Seen::LoopPut { pid }) => {
                // The worker is past `next:`: emptied after the failure
                // (and before this) is a window too.
                let Some(&bg) = latest.get(&pid) else { continue };
                if attempts.get(&bg).is_some_and(|a| a.pid == pid) {
                    let a = attempts.remove(&bg);
                    if a.is_some_and(|a| a.failed && a.emptied && !a.counted) {
                        found.push(bg);
                    }
                }
            }
            None => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const FSID: &str = "5d1a0c8e-3f0b-4a57-9d61-0c2b4f7e9a11";

    fn reclaim(pid: i32, bg: u64) -> String {
        format!("   kworker/u8:{pid}-{pid}     [001] .....   45.100000: btrfs_reclaim_block_group: {FSID}: bg bytenr={bg} len=335544320 used=33554432 flags=1(DATA)")
    }
    fn unused(bg: u64) -> String {
        format!("   btrfs-transacti-88      [000] .....   45.100100: btrfs_add_unused_block_group: {FSID}: bg bytenr={bg} len=335544320 used=0 flags=1(DATA)")
    }
    fn failed(bg: u64) -> String {
        format!("   kworker/u8:5-5     [001] .....   45.100200: console: BTRFS error (device vda): error relocating chunk {bg}")
    }
    fn loop_put(pid: i32, done: &str) -> String {
        format!("   kworker/u8:{pid}-{pid}     [001] .....   45.100300: console: BO: {pid} reclaim loop put bg{done}")
    }

    #[test]
    fn a_group_emptied_inside_its_failed_attempt_is_a_window() {
        let t = ["# tracer: nop".to_string(), reclaim(5, 100), unused(100), failed(100)].join("\n");
        assert_eq!(race_windows(&t, FSID), vec![100]);
    }

    #[test]
    fn emptied_before_or_after_the_attempt_or_on_success_is_not() {
        let before = [unused(100), reclaim(5, 100), failed(100)].join("\n");
        let after = [reclaim(5, 100), failed(100), unused(100)].join("\n");
        // Relocation succeeded (no error line): the worker moved on.
        let success = [reclaim(5, 100), unused(100), reclaim(5, 200), failed(200)].join("\n");
        let other_fs = [reclaim(5, 100), unused(100).replace(FSID, "00000000-0000-0000-0000-000000000000"), failed(100)].join("\n");
        for t in [before, after, success, other_fs] {
            assert!(race_windows(&t, FSID).is_empty(), "{t}");
        }
    }

    #[test]
    fn counts_each_window_of_each_group() {
        let t = [reclaim(5, 100), unused(100), failed(100), reclaim(5, 200), failed(200), reclaim(5, 100), unused(100), failed(100)]
            .join("\n");
        assert_eq!(race_windows(&t, FSID), vec![100, 100]);
    }

    #[test]
    fn emptied_between_the_failure_and_the_workers_loop_put_is_a_window() {
        // The seed-15 hit of the first `make vm-hunt`: the group went onto
        // unused_bgs after `error relocating chunk`, before `next:`.
        let t = [reclaim(5, 100), failed(100), unused(100), loop_put(5, ""), loop_put(5, " done")].join("\n");
        assert_eq!(race_windows(&t, FSID), vec![100]);
        // Emptied before the failure and the loop put: one window, not two.
        let t = [reclaim(5, 100), unused(100), failed(100), unused(100), loop_put(5, "")].join("\n");
        assert_eq!(race_windows(&t, FSID), vec![100]);
        // After the loop put the group is on the retry list: no window.
        let after = [reclaim(5, 100), failed(100), loop_put(5, ""), unused(100), reclaim(5, 200)].join("\n");
        assert!(race_windows(&after, FSID).is_empty());
        // Only the loop put itself ends the window, not its `done` line.
        let done_only = [reclaim(5, 100), failed(100), unused(100), loop_put(5, " done")].join("\n");
        assert!(race_windows(&done_only, FSID).is_empty(), "no loop put seen: the window ends at the failure");
        // Another worker's loop put ends nothing of 5's.
        let other = [reclaim(5, 100), failed(100), reclaim(6, 200), loop_put(6, ""), unused(100), loop_put(5, "")].join("\n");
        assert_eq!(race_windows(&other, FSID), vec![100]);
    }

    #[test]
    fn a_worker_moving_on_ends_only_its_own_attempt() {
        // 5 moves on from 100 after 6 took 100 over: 6's attempt stands.
        let taken_over = [reclaim(5, 100), reclaim(6, 100), reclaim(5, 200), unused(100), failed(100)].join("\n");
        assert_eq!(race_windows(&taken_over, FSID), vec![100]);
        // Among a thousand other workers' attempts, 5's is still found.
        let mut lines: Vec<String> = (1000..2000).map(|p| reclaim(p, p as u64 * 4096)).collect();
        lines.extend([reclaim(5, 100), reclaim(5, 200), unused(100), failed(100)]);
        assert!(race_windows(&lines.join("\n"), FSID).is_empty(), "5 had moved on from 100");
    }

    /// The pid index gives the answers of the plain scan it replaced (every
    /// attempt of the worker dropped when it starts another), on seeded
    /// random traces over a few pids and groups.
    #[test]
    fn the_pid_index_answers_as_the_scan_did() {
        fn by_scan(events: &[(u8, i32, u64)]) -> Vec<u64> {
            let mut attempts: HashMap<u64, (i32, bool)> = HashMap::new();
            let mut found = Vec::new();
            for &(what, pid, bg) in events {
                match what {
                    0 => {
                        attempts.retain(|_, (p, _)| *p != pid);
                        attempts.insert(bg, (pid, false));
                    }
                    1 => {
                        if let Some(a) = attempts.get_mut(&bg) {
                            a.1 = true;
                        }
                    }
                    _ => {
                        if attempts.remove(&bg).is_some_and(|(_, emptied)| emptied) {
                            found.push(bg);
                        }
                    }
                }
            }
            found
        }
        let mut rng = fastrand::Rng::with_seed(0x7261636521);
        for _ in 0..10_000 {
            let events: Vec<(u8, i32, u64)> = (0..rng.usize(1..40)).map(|_| (rng.u8(..3), rng.i32(1..5), rng.u64(1..6) * 100)).collect();
            let text: Vec<String> = events
                .iter()
                .map(|&(what, pid, bg)| match what {
                    0 => reclaim(pid, bg),
                    1 => unused(bg),
                    _ => failed(bg),
                })
                .collect();
            assert_eq!(race_windows(&text.join("\n"), FSID), by_scan(&events), "{events:?}");
        }
    }

    /// The no-tracefs fallback: a tracing directory without all three
    /// events (tracefs not mounted, or a kernel without the btrfs
    /// tracepoints) gives None, so the hunt counts nothing; with all three
    /// they are enabled, and disabled again at the end.
    #[test]
    fn tracing_starts_only_where_all_three_events_exist() {
        let root = std::env::temp_dir().join(format!("brr-tracefs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (empty, partial, full) = (root.join("empty"), root.join("partial"), root.join("full"));
        std::fs::create_dir_all(&empty).unwrap();
        for (dir, events) in [(&partial, &EVENTS[..2]), (&full, &EVENTS[..])] {
            for e in events {
                let d = dir.join("events").join(e);
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join("enable"), "0").unwrap();
            }
        }
        assert!(Tracing::start_in(&[&empty, &partial], &EVENTS).unwrap().is_none());
        let t = Tracing::start_in(&[&empty, &partial, &full], &EVENTS).unwrap().expect("all three events");
        assert_eq!(t.dir(), full.as_path());
        let enabled = |e: &str| std::fs::read_to_string(full.join("events").join(e).join("enable")).unwrap();
        assert!(EVENTS.iter().all(|e| enabled(e) == "1"));
        assert_eq!(t.read().unwrap(), "");
        drop(t);
        assert!(EVENTS.iter().all(|e| enabled(e) == "0"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::testing::fuzz::{run, text, INPUTS};

    const FSID: &str = "5d1a0c8e-3f0b-4a57-9d61-0c2b4f7e9a11";

    const DICTIONARY: [&[u8]; 9] = [
        b" btrfs_reclaim_block_group: ",
        b" btrfs_add_unused_block_group: ",
        b" console: ",
        b"error relocating chunk ",
        b"bytenr=",
        b"5d1a0c8e-3f0b-4a57-9d61-0c2b4f7e9a11",
        b"kworker/u8:3-97  [001] ",
        b"# tracer: nop",
        b" console: BO: 97 reclaim loop put bg",
    ];

    /// A hunt round's trace as tracefs prints it: groups reclaimed by
    /// changing workers, emptied, failed, some on another filesystem.
    fn corpus() -> String {
        let mut t = String::from("# tracer: nop\n#\n");
        for (i, bg) in [298844160u64, 634388480, 969932800, 1305477120].iter().enumerate() {
            let pid = 97 + i % 2;
            t.push_str(&format!("   kworker/u8:{pid}-{pid}     [001] .....   45.{i}00000: btrfs_reclaim_block_group: {FSID}: bg bytenr={bg} len=335544320 used=33554432 flags=1(DATA)\n"));
            t.push_str(&format!("   btrfs-transacti-88      [000] .....   45.{i}00100: btrfs_add_unused_block_group: {FSID}: bg bytenr={bg} len=335544320 used=0 flags=1(DATA)\n"));
            t.push_str(&format!("   kworker/u8:{pid}-{pid}     [001] .....   45.{i}00200: console: BTRFS error (device vda): error relocating chunk {bg}\n"));
            t.push_str(&format!("   kworker/u8:{pid}-{pid}     [001] .....   45.{i}00300: console: BO: {pid} reclaim loop put bg\n"));
        }
        t.push_str("   kworker/u8:4-44     [000] .....   46.000000: btrfs_reclaim_block_group: 00000000-0000-0000-0000-000000000000: bg bytenr=5 len=1 used=0 flags=1(DATA)\n");
        t
    }

    #[test]
    fn race_windows_never_panic() {
        let corpus = corpus();
        let make = |rng: &mut fastrand::Rng| text(rng, &[corpus.as_str()], 12, &DICTIONARY);
        let mut windows = 0;
        run("trace::race_windows", 0x7472616365, make, |input: &String| {
            let found = race_windows(input, FSID);
            // Each window ends with a failure line that names its group (its
            // digits: a mutation may have put zeros before them).
            let failures = input.lines().filter(|l| l.contains(" console: ") && l.contains("error relocating chunk ")).count();
            assert!(found.len() <= failures, "{found:?} from {failures} failure lines");
            for bg in &found {
                assert!(input.contains(&bg.to_string()), "{bg}");
            }
            windows += found.len();
        });
        assert!(windows > INPUTS / 20, "the windows must hold race windows: {windows}");
    }
}
