//! btrfs-reclaim-repro: one static binary that reproduces the btrfs
//! reclaim/relocation block group refcount bug and judges the kernel log.
#![deny(unsafe_code)]

// `sys` is the one module allowed to hold unsafe code.
#[allow(unsafe_code)]
mod sys;

mod base;
mod btrfs;
mod cli;
mod device;
mod judge;
mod kernel;
mod scenario;
#[cfg(test)]
mod testing;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use judge::report::ktap::{self, Test};
use judge::verdict::ExitCode;

/// The KTAP plan is out: whatever follows owes it one result line.
static KTAP_PLAN_PRINTED: AtomicBool = AtomicBool::new(false);

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let code = match std::panic::catch_unwind(|| run(&argv)) {
        Ok(code) => code,
        Err(_) => {
            // The guards unwound (unmounted, detached); a bug of ours is no
            // verdict on the kernel: bisect must skip.
            eprintln!("btrfs-reclaim-repro: internal error (panic above); nothing left mounted or attached. Please report it.");
            match ktap_test(&argv) {
                Some(test) => ktap_error(test, "internal error (a panic, see stderr); please report it"),
                None => ExitCode::SKIP,
            }
        }
    };
    std::process::exit(code);
}

/// Which KTAP test argv asks for, if --ktap: known even when the rest of
/// argv does not parse, so a refusal still reads as KTAP.
fn ktap_test(argv: &[String]) -> Option<Test> {
    let has = |flag: &str| argv.iter().skip(1).any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    has("--ktap").then(|| if has("--stress") { Test::Stress } else { Test::Single })
}

/// Prints `1..1` (unless already out), then the KTAP lines; flushed.
fn ktap_print(plan: bool, lines: &str) {
    let mut out = std::io::stdout().lock();
    if plan && !KTAP_PLAN_PRINTED.swap(true, Ordering::SeqCst) {
        let _ = out.write_all(ktap::HEADER.as_bytes());
    }
    let _ = out.write_all(lines.as_bytes());
    let _ = out.flush();
}

/// An error before or outside a verdict, as one KTAP result.
fn ktap_error(test: Test, why: &str) -> i32 {
    let (doc, code) = ktap::early_error(test, why);
    if KTAP_PLAN_PRINTED.load(Ordering::SeqCst) {
        ktap_print(false, doc.strip_prefix(ktap::HEADER).unwrap_or(&doc));
    } else {
        ktap_print(false, &doc);
        KTAP_PLAN_PRINTED.store(true, Ordering::SeqCst);
    }
    code
}

fn run(argv: &[String]) -> i32 {
    let ktap_asked = ktap_test(argv);
    let args = match cli::parse(argv) {
        Ok(a) => a,
        Err((code, text)) => {
            if code == 0 {
                print!("{text}");
            } else {
                eprintln!("btrfs-reclaim-repro: {text}");
                if let Some(test) = ktap_asked {
                    return ktap_error(test, &text);
                }
            }
            return code;
        }
    };
    if args.version {
        println!("btrfs-reclaim-repro {} {}", kernel::host::version(), env!("BRR_TARGET"));
        return 0;
    }
    let cfg = match cli::config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("btrfs-reclaim-repro: {e}");
            if let Some(test) = ktap_asked {
                return ktap_error(test, &e);
            }
            return ExitCode::REFUSED;
        }
    };
    if cfg.check_only {
        return scenario::preflight::report_all(&cfg);
    }
    if let Err(e) = sys::process::install_interrupt_handlers() {
        eprintln!("btrfs-reclaim-repro: {e}");
        if let Some(test) = ktap_asked {
            return ktap_error(test, &e.to_string());
        }
        return ExitCode::SKIP;
    }
    // KTAP: the plan goes out once the preflight has passed, before mkfs,
    // so a kernel that dies mid-run leaves a plan without a result.
    let outcome = scenario::run(&cfg, &mut || {
        if cfg.ktap {
            ktap_print(true, "");
        }
    });
    if cfg.ktap {
        ktap_print(true, &outcome.ktap);
        return outcome.ktap_exit_code;
    }
    let mut out = std::io::stdout().lock();
    if cfg.json {
        // A refusal was already said in one line on stderr.
        if outcome.verdict.kind != judge::verdict::Kind::Refused {
            eprint!("{}", outcome.text);
        }
        let _ = out.write_all(outcome.json.as_bytes());
    } else {
        let _ = out.write_all(outcome.text.as_bytes());
    }
    let _ = out.flush();
    outcome.verdict.exit_code()
}
