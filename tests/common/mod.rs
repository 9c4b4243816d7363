//! Helpers for the end-to-end tests: run the binary, stage images and loop
//! devices, and always clean up what a test made, even when it fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test: the shipped static one when `make test` says so.
pub fn bin() -> PathBuf {
    std::env::var_os("BRR_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_btrfs-reclaim-repro")))
}

/// True when this test can mkfs and mount loop devices. Elsewhere it prints
/// why it skips; in CI (CI set) a skip is a failure.
pub fn privileged(test: &str) -> bool {
    let reason = if unsafe_euid_is_root() {
        if !Path::new("/dev/loop-control").exists() {
            Some("no /dev/loop-control")
        } else if !std::fs::read_to_string("/proc/filesystems").unwrap_or_default().contains("btrfs") {
            Some("the kernel has no btrfs")
        } else if which("mkfs.btrfs").is_none() {
            Some("mkfs.btrfs not installed")
        } else {
            None
        }
    } else {
        Some("not root")
    };
    match reason {
        None => true,
        Some(r) => {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: privileged test cannot run in CI: {r}");
            }
            eprintln!("SKIP {test}: {r}");
            false
        }
    }
}

fn unsafe_euid_is_root() -> bool {
    // std only: the effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        .unwrap_or(false)
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.is_file());
    found
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
    Command::new(bin()).args(args).stdin(Stdio::null()).output().expect("run the binary").into()
}

/// The raw JSON text of a top-level key's value (number, string, array,
/// object, null): enough for these tests without a JSON crate.
pub fn json_field(json: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\": ");
    let mut depth = 0i32;
    let mut in_str = false;
    let b = json.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            if depth == 1 && json[i..].starts_with(&needle) {
                let start = i + needle.len();
                return Some(value_at(&json[start..]));
            }
            in_str = true;
        } else if c == b'{' || c == b'[' {
            depth += 1;
        } else if c == b'}' || c == b']' {
            depth -= 1;
        }
        i += 1;
    }
    None
}

fn value_at(s: &str) -> String {
    let b = s.as_bytes();
    let (mut depth, mut in_str, mut i) = (0i32, false, 0);
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
                if depth == 0 {
                    return s[..=i].to_string();
                }
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return s[..i].trim().to_string(),
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return s[..=i].to_string();
                    }
                }
                b',' if depth == 0 => return s[..i].trim().to_string(),
                _ => {}
            }
        }
        i += 1;
    }
    s.trim().to_string()
}

/// A scratch directory with an image path and a mount point. Drop undoes
/// whatever a failed run may have left: unmounts, detaches, deletes.
pub struct Scratch {
    pub dir: PathBuf,
    pub img: PathBuf,
    pub mnt: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("brr-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { img: dir.join("disk.img"), mnt: dir.join("mnt"), dir }
    }

    pub fn img(&self) -> &str {
        self.img.to_str().unwrap()
    }
    pub fn mnt(&self) -> &str {
        self.mnt.to_str().unwrap()
    }

    /// Loop devices whose backing file is under this scratch directory.
    pub fn loops(&self) -> Vec<String> {
        let out = Command::new("losetup").args(["-a", "-n", "-O", "NAME,BACK-FILE"]).output();
        let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains(self.dir.to_str().unwrap()))
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    }

    /// Mount points under this scratch directory.
    pub fn mounts(&self) -> Vec<String> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .filter(|m| m.starts_with(self.dir.to_str().unwrap()))
            .collect()
    }

    /// Asserts the run left nothing mounted or attached.
    pub fn assert_clean(&self) {
        assert!(self.mounts().is_empty(), "left mounted: {:?}", self.mounts());
        assert!(self.loops().is_empty(), "left attached: {:?}", self.loops());
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for m in self.mounts().iter().rev() {
            let _ = Command::new("umount").arg(m).status();
        }
        for l in self.loops() {
            let _ = Command::new("losetup").args(["-d", &l]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates a sparse file of `bytes`.
pub fn sparse(path: &Path, bytes: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(bytes).unwrap();
}
