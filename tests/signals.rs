//! Clean up, always: SIGINT, SIGTERM and SIGHUP in any phase stop the run,
//! unmount, detach, print the partial verdict marked INTERRUPTED and exit
//! 128 + the signal number. The phases are made hittable by the test hook
//! BRR_TEST_PAUSE=<phase>, which holds the run at the start of that phase
//! (the binary prints "pausing at <phase>" and keeps noticing signals), or
//! at a point inside one: `hunt.helpers`, once the hunt's helper processes
//! run.

mod common;
use common::*;

use std::path::Path;
use std::time::Duration;

/// Starts a single pass on a new 3 GiB image held at `phase`, sends `sig`
/// once it is there, and checks the exit code, the verdict and the cleanup.
fn interrupt_at(phase: &str, sig: &str, code: i32) {
    interrupt_with(&[], phase, sig, code);
}

/// `interrupt_at` with `extra` options; the test is named after them.
fn interrupt_with(extra: &[&str], phase: &str, sig: &str, code: i32) {
    let tag: String = extra.iter().map(|a| format!("{}-", a.trim_start_matches('-'))).collect();
    let test = format!("interrupt_{}at_{}_{sig}", tag.replace('-', "_"), phase.replace(':', "_"));
    if !privileged(&test) {
        return;
    }
    let s = Scratch::new(&format!("sig-{tag}{}-{sig}", phase.replace(':', "-")));
    let args: Vec<&str> = ["--size", "3G", "--timeout", "30"].iter().chain(extra).chain(&[s.img(), s.mnt()]).copied().collect();
    let mut r = Running::start(&bin(), &args, &[("BRR_TEST_PAUSE", phase)]);
    let paused = r.wait_for_line(&format!("pausing at {phase}"), Duration::from_secs(90));
    if paused {
        // What the phase before left behind must be there to clean up.
        if !phase.ends_with("mkfs") {
            assert!(!s.mounts().is_empty(), "{test}: nothing mounted at {phase}");
        }
        assert!(!s.loops().is_empty(), "{test}: no loop device attached at {phase}");
        send_signal(r.pid(), sig);
    }
    let out = r.finish(Duration::from_secs(60));
    assert!(paused, "{test}: never paused at {phase}:\n{}\n{}", out.stdout, out.stderr);
    assert_interrupted(&test, &out, &s, sig, code);
    // Nothing outside <mnt> was deleted: the image we asked for is still there.
    assert!(Path::new(s.img()).exists(), "{test}: the image file is gone");
}

/// The run ended as `sig` asks: its exit code, the INTERRUPTED verdict
/// naming the signal, nothing left mounted or attached, no failed cleanup.
fn assert_interrupted(test: &str, out: &Run, s: &Scratch, sig: &str, code: i32) {
    assert_eq!(out.code, code, "{test}:\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(&format!("INTERRUPTED (exit {code})")), "{test}: {}", out.stdout);
    assert!(out.stdout.contains(&format!("interrupted by SIG{sig}")), "{test}: {}", out.stdout);
    s.assert_clean();
    assert!(!out.stderr.contains("could not"), "{test}: a cleanup step failed:\n{}", out.stderr);
}

/// --trigger swapfile: swap goes off on the way out whatever stopped the
/// steps: a signal in the trigger (swap on) or one just before swapoff.
#[test]
fn sigint_with_swap_on_turns_it_off_and_cleans_up() {
    for phase in ["trigger", "swapoff"] {
        interrupt_with(&["--trigger", "swapfile"], phase, "INT", 130);
        let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
        assert!(!swaps.contains("brr-test-sig-trigger-swapfile-"), "{phase}: swap left on:\n{swaps}");
    }
}

#[test]
fn sigint_in_mkfs_phase_exits_130_and_cleans_up() {
    interrupt_at("mkfs", "INT", 130);
}

#[test]
fn sigint_in_fill_phase_exits_130_and_cleans_up() {
    interrupt_at("fill", "INT", 130);
}

/// The reclaim wait.
#[test]
fn sigint_in_trigger_phase_exits_130_and_cleans_up() {
    interrupt_at("trigger", "INT", 130);
}

#[test]
fn sigterm_in_fragment_phase_exits_143_and_cleans_up() {
    interrupt_at("fragment", "TERM", 143);
}

#[test]
fn sighup_in_settle_phase_exits_129_and_cleans_up() {
    interrupt_at("settle", "HUP", 129);
}

/// A signal while mkfs.btrfs itself runs: a stand-in mkfs (bind-mounted over
/// the real one in a private mount namespace) that never finishes; the
/// binary must stop it, detach and exit 130.
#[test]
fn sigint_while_mkfs_runs_stops_it_and_cleans_up() {
    let test = "sigint_while_mkfs_runs_stops_it_and_cleans_up";
    if !privileged(test) || !runs(test, missing_tool("unshare", "util-linux")) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new("sig-mkfs-running");
    let started = s.path("mkfs-started");
    let fake = s.path("slow-mkfs");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ncase \"$1\" in --version) echo 'mkfs.btrfs, part of btrfs-progs v6.2'; exit 0;; esac\ntouch '{}'\nexec sleep 120\n",
            started.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut argv = mkfs_replaced_by(&fake);
    argv.extend([bin().to_str().unwrap().to_string(), "--mkfs".into(), "external".into(), "--size".into(), "3G".into(), s.img().into(), s.mnt().into()]);
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let r = Running::start(Path::new(&argv[0]), &args, &[]);
    let mut up = false;
    for _ in 0..600 {
        if started.exists() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if up {
        send_signal(r.pid(), "INT");
    }
    let out = r.finish(Duration::from_secs(30));
    assert!(up, "mkfs never started:\n{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.code, 130, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("INTERRUPTED (exit 130)"), "{}", out.stdout);
    s.assert_clean();
}

/// The default's second pass (natural, after an injected pass that found no
/// failure on this stock kernel): a signal in its mkfs and in its starve
/// phase still leaves nothing mounted or attached.
#[test]
fn sigint_in_the_natural_pass_mkfs_exits_130_and_cleans_up() {
    interrupt_at("natural:mkfs", "INT", 130);
}

#[test]
fn sigterm_in_the_natural_pass_starve_exits_143_and_cleans_up() {
    interrupt_at("natural:starve", "TERM", 143);
}

/// Inside the hunt (`--stress`, reclaim threshold=75), while its helper
/// processes run (two BTRFS_IOC_SYNC loops and a create/unlink loop, forked,
/// not threads; BRR_TEST_PAUSE=hunt.helpers holds the run there): the signal
/// must leave nothing mounted or attached and no helper alive. `to_group`
/// sends it to the whole process group, as Ctrl-C in a terminal does, so the
/// helpers get it too.
fn interrupt_the_hunt(sig: &str, code: i32, to_group: bool) {
    let test = format!("interrupt_the_hunt_with_{sig}{}", if to_group { "_to_the_group" } else { "" });
    if !privileged(&test) {
        return;
    }
    let s = Scratch::new(&format!("sig-hunt-{sig}"));
    let at = "hunt.helpers";
    let args = ["--stress", "120", "--seed", "3", "--size", "3G", s.img(), s.mnt()];
    let mut r = Running::start_as_group(&bin(), &args, &[("BRR_TEST_PAUSE", at)]);
    let paused = r.wait_for_line(&format!("pausing at {at}"), Duration::from_secs(180));
    let mut helpers = Vec::new();
    if paused {
        assert!(!s.mounts().is_empty(), "{test}: nothing mounted at {at}");
        assert!(!s.loops().is_empty(), "{test}: no loop device attached at {at}");
        helpers = processes_of(&bin()).into_iter().filter(|(_, ppid)| *ppid == r.pid()).map(|(pid, _)| pid).collect();
        if to_group {
            send_signal_to_group(r.pid(), sig);
        } else {
            send_signal(r.pid(), sig);
        }
    }
    let exited = r.wait_exit(Duration::from_secs(90));
    // The run is over: no process of the binary is left, helper or not (a
    // survivor would also hold the mount and the binary's stdout). Killed
    // here if so, so that a failing test leaves no loop running.
    let left = processes_of(&bin());
    for (pid, _) in &left {
        send_signal(*pid, "KILL");
    }
    let out = r.finish(Duration::from_secs(10));
    assert!(paused, "{test}: never paused at {at}:\n{}\n{}", out.stdout, out.stderr);
    assert!(exited, "{test}: still running 90 s after SIG{sig}:\n{}", out.stderr);
    assert_eq!(helpers.len(), 3, "{test}: expected 2 sync helpers and 1 churn helper running at {at}: {helpers:?}");
    assert!(left.is_empty(), "{test}: still running (pid, ppid) {left:?}; helpers were {helpers:?}\n{}", out.stderr);
    assert_interrupted(&test, &out, &s, sig, code);
}

#[test]
fn sigterm_while_the_hunts_helpers_run_kills_them_and_cleans_up() {
    interrupt_the_hunt("TERM", 143, false);
}

/// Ctrl-C: SIGINT to the binary and its helpers at once.
#[test]
fn sigint_to_the_group_during_the_hunt_kills_the_helpers_and_cleans_up() {
    interrupt_the_hunt("INT", 130, true);
}
