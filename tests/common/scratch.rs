//! Scratch directories, images and shell helpers that touch the system;
//! Drop undoes whatever a failed run may have left.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// Creates a sparse file of `bytes`.
pub fn sparse(path: &Path, bytes: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(bytes).unwrap();
}
