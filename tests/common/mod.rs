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
        // Swap first (a swapped-on loop device cannot be detached), then
        // mounts innermost first, then loop devices.
        for s in self.swaps() {
            let _ = Command::new("swapoff").arg(&s).status();
        }
        for m in self.mounts().iter().rev() {
            let ok = Command::new("umount").arg(m).status().is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").args(["-l", m]).status();
            }
        }
        for l in self.loops() {
            let _ = Command::new("losetup").args(["-d", &l]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Scratch {
    /// Active swap areas that are this scratch directory's files or loop
    /// devices.
    pub fn swaps(&self) -> Vec<String> {
        let loops = self.loops();
        let dir = self.dir.to_str().unwrap().to_string();
        std::fs::read_to_string("/proc/swaps")
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .filter(|s| s.starts_with(&dir) || loops.iter().any(|l| s == l || s.starts_with(&format!("{l}p"))))
            .collect()
    }

    /// A path inside the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Attaches `image` to a free loop device (`partscan`: losetup -P) and
    /// returns its path; Drop detaches it.
    pub fn attach(&self, image: &Path, partscan: bool) -> String {
        let mut args = vec!["-f", "--show"];
        if partscan {
            args.push("-P");
        }
        let out = sh("losetup", &[&args[..], &[image.to_str().unwrap()]].concat());
        let dev = out.trim().to_string();
        if partscan {
            // The partition node may take a moment; a kernel built without
            // the partition-table parsers finds none, and partx -a adds
            // them from user space (BLKPG).
            let p1 = format!("{dev}p1");
            for i in 0..100 {
                if Path::new(&p1).exists() {
                    break;
                }
                if i == 10 {
                    let _ = Command::new("partx").args(["-a", &dev]).stderr(Stdio::null()).status();
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        dev
    }

    /// Mounts `dev` on a new directory `name` inside the scratch directory
    /// (`opts` as for mount -o); Drop unmounts it.
    pub fn mount(&self, dev: &str, name: &str, opts: &str) -> PathBuf {
        let m = self.dir.join(name);
        std::fs::create_dir_all(&m).unwrap();
        sh("mount", &["-o", opts, dev, m.to_str().unwrap()]);
        m
    }
}

/// Runs a command that must succeed; returns its stdout.
pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command with `input` on its stdin; must succeed.
pub fn sh_input(cmd: &str, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first and the last MiB of a file or block device (less when it is
/// smaller), to prove that nothing was written.
pub fn ends(path: &Path) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    const MIB: u64 = 1 << 20;
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let size = f.seek(SeekFrom::End(0)).unwrap();
    let mut out = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.by_ref().take(MIB.min(size)).read_to_end(&mut out).unwrap();
    f.seek(SeekFrom::Start(size.saturating_sub(MIB))).unwrap();
    f.take(MIB).read_to_end(&mut out).unwrap();
    out
}

/// A progress line (`[   0.0s] text`), as opposed to a message.
pub fn is_progress_line(line: &str) -> bool {
    line.starts_with('[') && line.split_once("s] ").is_some_and(|(t, _)| t[1..].trim().parse::<f64>().is_ok())
}

/// stderr lines that are not progress lines: warnings, refusals, errors.
pub fn message_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.trim().is_empty() && !is_progress_line(l)).collect()
}

/// Sends a signal (by name: INT, TERM, HUP, KILL) with kill(1): the tests
/// use std only.
pub fn send_signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid} failed");
}

/// The binary running in the background, its stderr read line by line as
/// it comes.
pub struct Running {
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub stderr: String,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    /// Starts `program args` (normally the binary, or a wrapper that execs
    /// it) with extra environment variables.
    pub fn start(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
        use std::io::{BufRead, Read};
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Running { child, lines: rx, stderr: String::new(), stdout: Some(stdout) }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stderr line containing `needle`; false on timeout or
    /// when stderr closed first.
    pub fn wait_for_line(&mut self, needle: &str, timeout: std::time::Duration) -> bool {
        let end = std::time::Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.stderr.push_str(&line);
                    self.stderr.push('\n');
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Waits for the exit (killing it after `timeout`) and returns what it
    /// printed.
    pub fn finish(mut self, timeout: std::time::Duration) -> Run {
        let end = std::time::Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break Some(s);
            }
            if std::time::Instant::now() >= end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(2)) {
            self.stderr.push_str(&line);
            self.stderr.push('\n');
        }
        let stdout = self.stdout.take().unwrap().join().unwrap_or_default();
        Run { code: status.and_then(|s| s.code()).unwrap_or(-1), stdout, stderr: std::mem::take(&mut self.stderr) }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed assertion must not leave the binary running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Creates a sparse file of `bytes`.
pub fn sparse(path: &Path, bytes: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(bytes).unwrap();
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
