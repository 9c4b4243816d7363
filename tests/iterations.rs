//! Long runs leave nothing behind: ten iterations on fresh filesystems,
//! with open fds and VmRSS recorded per iteration (JSON `per_iteration`).

mod common;
use common::*;

/// Neither open fds nor VmRSS grow after iteration 2, and nothing stays
/// mounted or attached.
#[test]
fn ten_iterations_do_not_grow() {
    if !privileged("ten_iterations_do_not_grow") {
        return;
    }
    let s = Scratch::new("iterations");
    let r = run(&[
        "--size", "1200M", "--json", "--seed", "3", "--iterations", "10", "--enospc", "injected", "--timeout", "10",
        s.img(), s.mnt(),
    ]);
    assert!(matches!(r.code, 0 | 125), "exit {}\n{}", r.code, r.stderr);
    assert_eq!(r.json_u64("iterations"), 10, "{}", r.stderr);
    let per = r.json("per_iteration");
    let field = |name: &str| -> Vec<u64> {
        per.split(&format!("\"{name}\": ")).skip(1).map(|t| t.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()).collect()
    };
    let (fds, rss) = (field("open_fds"), field("vm_rss_kib"));
    assert_eq!((fds.len(), rss.len()), (10, 10), "{per}");
    let after_two = |v: &[u64]| *v[2..].iter().max().unwrap();
    assert!(after_two(&fds) <= fds[1], "open fds grew after iteration 2: {fds:?}");
    // The allocator may keep a few pages more; a leak per iteration would
    // add up over eight more.
    assert!(after_two(&rss) <= rss[1] + 512, "VmRSS grew after iteration 2: {rss:?} KiB");
    s.assert_clean();
}
