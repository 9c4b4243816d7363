//! --enospc natural on this machine's stock kernel: a real ENOSPC from
//! starved metadata sends reclaim down the relocation error path.

mod common;
use common::*;

#[test]
fn natural_enospc_fails_reclaim_relocations_on_a_stock_kernel() {
    if !privileged("natural_enospc_fails_reclaim_relocations_on_a_stock_kernel") {
        return;
    }
    let s = Scratch::new("natural");
    let r = run(&["--size", "3G", "--json", "--enospc", "natural", "--timeout", "60", s.img(), s.mnt()]);
    eprintln!("{}", r.stderr);
    assert_eq!(r.json_str("enospc_mode"), "natural");
    assert!(r.json_u64("reclaim_errors") >= 1, "no reclaim relocation failed");
    assert!(r.json_u64("relocation_failures") >= 1);
    assert_eq!(r.json_str("failure_path"), "natural");
    assert_eq!(r.json_str("verdict"), "NOT_REPRODUCED");
    assert!(r.json_str("reason").contains("natural ENOSPC"), "{}", r.json("reason"));
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("metadata is full"), "the starve step ran");
    s.assert_clean();
}
