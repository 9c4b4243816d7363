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

use judge::verdict::ExitCode;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let code = match std::panic::catch_unwind(|| run(&argv)) {
        Ok(code) => code,
        Err(_) => {
            // The guards unwound (unmounted, detached); a bug of ours is no
            // verdict on the kernel: bisect must skip.
            eprintln!("btrfs-reclaim-repro: internal error (panic above); nothing left mounted or attached. Please report it.");
            ExitCode::SKIP
        }
    };
    std::process::exit(code);
}

fn run(argv: &[String]) -> i32 {
    let args = match cli::parse(argv) {
        Ok(a) => a,
        Err((code, text)) => {
            if code == 0 {
                print!("{text}");
            } else {
                eprintln!("btrfs-reclaim-repro: {text}");
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
            return ExitCode::REFUSED;
        }
    };
    if cfg.check_only {
        return scenario::preflight::report_all(&cfg);
    }
    if let Err(e) = sys::process::install_interrupt_handlers() {
        eprintln!("btrfs-reclaim-repro: {e}");
        return ExitCode::SKIP;
    }
    let outcome = scenario::run(&cfg);
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
