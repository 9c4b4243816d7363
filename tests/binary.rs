//! The shipped binary itself: static, self-contained, usage errors.

mod common;
use common::*;

/// No PT_INTERP program header: no dynamic loader, no libc on the target.
#[test]
fn binary_has_no_interpreter_when_built_static() {
    let test = "binary_has_no_interpreter_when_built_static";
    // `make test` (and so CI) always sets it.
    if !runs(test, std::env::var_os("BRR_BIN").is_none().then(|| "BRR_BIN not set (make test sets it to the static build)".to_string())) {
        return;
    }
    let elf = std::fs::read(bin()).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit");
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let phentsize = u16::from_le_bytes(elf[0x36..0x38].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(elf[0x38..0x3a].try_into().unwrap()) as usize;
    for i in 0..phnum {
        let p_type = u32::from_le_bytes(elf[phoff + i * phentsize..phoff + i * phentsize + 4].try_into().unwrap());
        assert_ne!(p_type, 3, "PT_INTERP present: dynamically linked");
    }
    let out = std::process::Command::new(bin()).arg("--version").env_clear().output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("btrfs-reclaim-repro "));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for args in [
        &["--fill", "0", "/dev/null", "/mnt"][..],
        &["--fill", "150", "a", "b"],
        &["--size", "12Q", "a", "b"],
        &["--timeout", "-1", "a", "b"],
        &["--nonsense", "a", "b"],
        &["only-one"],
        &[],
    ] {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty());
    }
}

#[test]
fn help_exits_0_and_teaches() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("--size 3G"));
    assert!(r.stdout.contains("git bisect run"));
    assert!(r.stdout.contains("125"));
}
