//! Helpers for the end-to-end tests: run the binary, stage images and loop
//! devices, and always clean up what a test made, even when it fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod json;
mod running;
mod scratch;
mod skip;
#[allow(unused_imports)]
pub use json::*;
#[allow(unused_imports)]
pub use running::*;
#[allow(unused_imports)]
pub use scratch::*;
#[allow(unused_imports)]
pub use skip::*;

/// The binary under test: the shipped static one when `make test` says so.
pub fn bin() -> PathBuf {
    std::env::var_os("BRR_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_btrfs-reclaim-repro")))
}

/// True when this test can mkfs and mount loop devices. Elsewhere it prints
/// why it skips; in CI (CI set) a skip is a failure.
pub fn privileged(test: &str) -> bool {
    runs(test, missing_privilege().or_else(|| missing_tool("mkfs.btrfs", "btrfs-progs")))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self, key: &str) -> String {
        json_field(&self.stdout, key).unwrap_or_else(|| panic!("no {key} in stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
    pub fn json_u64(&self, key: &str) -> u64 {
        self.json(key).parse().unwrap_or_else(|_| panic!("{key} is not an integer: {}", self.json(key)))
    }
    pub fn json_str(&self, key: &str) -> String {
        let v = self.json(key);
        v.trim_matches('"').to_string()
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn run(args: &[&str]) -> Run {
    run_env(args, &[])
}

/// Runs the binary with extra environment variables (the test hooks).
pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the binary").into()
}

/// A progress line (`[   0.0s] text`), as opposed to a message.
pub fn is_progress_line(line: &str) -> bool {
    line.starts_with('[') && line.split_once("s] ").is_some_and(|(t, _)| t[1..].trim().parse::<f64>().is_ok())
}

/// stderr lines that are not progress lines: warnings, refusals, errors.
pub fn message_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.trim().is_empty() && !is_progress_line(l)).collect()
}

/// A command prefix that runs the binary with `src` in place of every
/// mkfs.btrfs it could find (PATH and the sbin directories): bind mounts in
/// a private mount namespace (unshare), so nothing changes outside it.
/// `/dev/null` hides mkfs.btrfs; a script stands in for it.
pub fn mkfs_replaced_by(src: &Path) -> Vec<String> {
    let mut targets: Vec<PathBuf> = Vec::new();
    let path = std::env::var("PATH").unwrap_or_default();
    for d in path.split(':').filter(|d| d.starts_with('/')).chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
        let p = Path::new(d).join("mkfs.btrfs");
        if p.is_file() {
            let c = std::fs::canonicalize(&p).unwrap();
            if !targets.contains(&c) {
                targets.push(c);
            }
        }
    }
    let binds: Vec<String> = targets.iter().map(|t| format!("mount --bind '{}' '{}'", src.display(), t.display())).collect();
    let script = format!("{} && exec \"$@\"", if binds.is_empty() { "true".to_string() } else { binds.join(" && ") });
    ["unshare", "--mount", "--propagation", "private", "sh", "-c", &script, "sh"].iter().map(|x| x.to_string()).collect()
}
