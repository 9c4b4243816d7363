//! Kernel operations run in children: a killed unmount is evidence, the
//! judge survives, and cleanup still happens.

mod common;
use common::*;

#[test]
fn a_killed_unmount_child_is_reproduced_and_cleaned_up() {
    if !privileged("a_killed_unmount_child_is_reproduced_and_cleaned_up") {
        return;
    }
    let s = Scratch::new("killed-unmount");
    let r = run_env(&["--size", "3G", "--json", "--timeout", "30", s.img(), s.mnt()], &[("BRR_TEST_CRASH_IN", "unmount")]);
    eprintln!("{}", r.stderr);
    assert_eq!(r.json_str("verdict"), "REPRODUCED");
    assert_eq!(r.code, 1);
    assert_eq!(r.json("killed_in"), r#"{"step": "unmount", "signal": 11}"#);
    assert!(r.json_str("reason").contains("killed the unmount task (SIGSEGV)"), "{}", r.json("reason"));
    // The kernel is in fact fine: the cleanup child unmounted, the loop
    // device went away.
    assert!(r.json("notes").contains("cleanup unmounted"), "{}", r.json("notes"));
    s.assert_clean();
}

#[test]
fn a_killed_sync_child_stops_the_run_with_the_step_named() {
    if !privileged("a_killed_sync_child_stops_the_run_with_the_step_named") {
        return;
    }
    let s = Scratch::new("killed-sync");
    let r = run_env(&["--size", "3G", "--json", "--timeout", "30", s.img(), s.mnt()], &[("BRR_TEST_CRASH_IN", "trigger")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.json("killed_in"), r#"{"step": "trigger", "signal": 11}"#);
    s.assert_clean();
}
