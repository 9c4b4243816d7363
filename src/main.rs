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
mod vm;

use std::io::Write;

use judge::report::ktap::{self, Test};
use judge::verdict::ExitCode;

fn main() {
    if vm::guest::is_guest() {
        vm::guest::main();
    }
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
    ktap::asked(argv.get(1..).unwrap_or_default())
}

/// An error before or outside a verdict, as one KTAP result.
fn ktap_error(test: Test, why: &str) -> i32 {
    let (doc, code) = ktap::early_error(test, why);
    ktap::print_document(&doc);
    code
}

fn run(argv: &[String]) -> i32 {
    let ktap_asked = ktap_test(argv);
    let args = match cli::parse(argv) {
        Ok(a) => a,
        Err((code, text)) => return help_or_usage(code, &text, ktap_asked),
    };
    if args.vm.is_some() && !args.version {
        return match cli::vm_options(args, &argv[1..]) {
            Ok(o) => vm::host::run(&o),
            Err(e) => {
                eprintln!("btrfs-reclaim-repro: {e}");
                // kselftest's codes have no "abort": a refusal is a failed
                // test, as natively.
                if let Some(test) = ktap_asked {
                    return ktap_error(test, &e);
                }
                judge::verdict::ExitCode::VM_REFUSED
            }
        };
    }
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
    run_scenario(&cfg, ktap_asked)
}

/// --help or --version's text on stdout (0), or a usage error on stderr
/// (and as a KTAP result where KTAP was asked for).
fn help_or_usage(code: i32, text: &str, ktap_asked: Option<Test>) -> i32 {
    if code == 0 {
        print!("{text}");
    } else {
        eprintln!("btrfs-reclaim-repro: {text}");
        if let Some(test) = ktap_asked {
            return ktap_error(test, text);
        }
    }
    code
}

/// The run itself, with the signal handlers in place, and its verdict on
/// stdout as text, JSON or KTAP.
fn run_scenario(cfg: &scenario::Config, ktap_asked: Option<Test>) -> i32 {
    if let Err(e) = sys::process::install_interrupt_handlers() {
        eprintln!("btrfs-reclaim-repro: {e}");
        if let Some(test) = ktap_asked {
            return ktap_error(test, &e.to_string());
        }
        return ExitCode::SKIP;
    }
    // KTAP: the plan goes out once the preflight has passed, before mkfs,
    // so a kernel that dies mid-run leaves a plan without a result.
    let outcome = scenario::run(cfg, &mut || {
        if cfg.ktap {
            ktap::print(true, "");
            // Under --vm this stdout is a file the host reads at the end:
            // tell the host now, on stderr (the console), so that it puts
            // its own plan out at the same moment.
            if vm::guest::is_guest_pass() {
                eprintln!("{}", vm::ktap::PLAN_MARKER);
            }
        }
    });
    if cfg.ktap {
        ktap::print(true, &outcome.ktap);
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
