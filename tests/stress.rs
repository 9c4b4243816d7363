//! Stress mode end to end: churn workers and a balance worker for a while.

mod common;
use common::*;

#[test]
fn stress_20s_with_2_workers_makes_progress_and_cleans_up() {
    if !privileged("stress_20s_with_2_workers_makes_progress_and_cleans_up") {
        return;
    }
    let s = Scratch::new("stress");
    let r = run(&["--size", "3G", "--json", "--stress", "20", "--workers", "2", "--seed", "3", s.img(), s.mnt()]);
    eprintln!("{}", r.stderr);
    assert_eq!(r.json_str("mode"), "stress");
    let rounds = r.json("worker_rounds");
    let rounds: Vec<u64> = rounds.trim_matches(['[', ']']).split(',').map(|n| n.trim().parse().unwrap()).collect();
    assert_eq!(rounds.len(), 2, "one count per worker");
    assert!(rounds.iter().all(|n| *n >= 1), "every worker made progress: {rounds:?}");
    let started = r.json_u64("balances_started");
    assert!(started >= 1, "a balance was started");
    assert!(
        r.json_u64("balance_relocations") >= 1 || r.json_u64("balances_cancelled") >= 1 || r.json_u64("balances_failed") >= 1,
        "the balance relocated, was cancelled, or failed trying"
    );
    for key in ["balances_busy", "balance_tid", "reclaim_count", "injections", "overlaps", "kmsg_lost"] {
        r.json_u64(key);
    }
    // INCONCLUSIVE or better: a stock kernel cannot do worse than 125.
    assert!(matches!(r.code, 0 | 1 | 3 | 125), "exit {}", r.code);
    assert_eq!(r.json_u64("seed"), 3);
    assert!(r.json("phases").contains("\"stress\": 2"), "{}", r.json("phases"));
    s.assert_clean();
}
