//! Never destroy what the user did not name: every refusal this machine can
//! stage, on images and loop devices the test makes itself. Each refusal
//! must exit 2 with one message line naming the cause, a REFUSED verdict (if
//! any) on stdout, and leave the device's first and last MiB untouched.
//!
//! What cannot be staged here (the disk holding /, dm/md holders, a second
//! member of a multi-device btrfs) is covered by the unit tests in
//! src/device/safety.rs over fixture mountinfo, swaps and sysfs trees.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::time::Duration;

const MIB: u64 = 1 << 20;
/// Big enough that "too small" never hides the refusal a row is about.
const IMAGE: u64 = 1100 * MIB;

/// What a row staged: the arguments, and what must not change.
struct Staged {
    dev: String,
    mnt: String,
    /// Extra options before <dev> <mnt>.
    args: Vec<String>,
    /// Run the binary through this command (setpriv, unshare ...).
    wrapper: Vec<String>,
    /// The binary to run (a copy, for another user).
    program: PathBuf,
    /// Files or block devices whose first and last MiB must stay the same.
    watch: Vec<PathBuf>,
    /// Substrings the message line must contain.
    expect: Vec<String>,
}

impl Staged {
    fn new(s: &Scratch, dev: impl Into<String>, expect: &[&str]) -> Staged {
        Staged {
            dev: dev.into(),
            mnt: s.mnt().to_string(),
            args: Vec::new(),
            wrapper: Vec::new(),
            program: bin(),
            watch: Vec::new(),
            expect: expect.iter().map(|e| e.to_string()).collect(),
        }
    }
    fn watching(mut self, p: impl AsRef<Path>) -> Staged {
        self.watch.push(p.as_ref().to_path_buf());
        self
    }
    fn args(mut self, a: &[&str]) -> Staged {
        self.args.extend(a.iter().map(|x| x.to_string()));
        self
    }
}

/// A row: how to stage it (Err: cannot be staged on this machine, and why),
/// and whether --force must not change the answer (in-use refusals).
struct Case {
    name: &'static str,
    stage: fn(&Scratch) -> Result<Staged, String>,
    force_too: bool,
}

fn image(s: &Scratch, bytes: u64) -> PathBuf {
    sparse(&s.img, bytes);
    s.img.clone()
}

fn have(cmd: &str, package: &str) -> Result<(), String> {
    missing_tool(cmd, package).map_or(Ok(()), Err)
}

fn ext4_image(s: &Scratch) -> PathBuf {
    let img = image(s, IMAGE);
    sh("mkfs.ext4", &["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", s.img()]);
    img
}

/// One partition over the whole image, `label` dos or gpt.
fn partitioned_image(s: &Scratch, label: &str) -> PathBuf {
    let img = image(s, IMAGE);
    sh_input("sfdisk", &["-q", s.img()], &format!("label: {label}\n,,L\n"));
    img
}

/// A copy of the binary that any user may run (the tests' target directory
/// need not be readable by nobody).
fn public_binary(s: &Scratch) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = s.path("brr");
    std::fs::copy(bin(), &b).unwrap();
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).unwrap();
    b
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "missing <dev> without --size",
            stage: |s| Ok(Staged::new(s, s.path("absent.img").to_str().unwrap(), &["no such file", "--size"])),
            force_too: true,
        },
        Case {
            name: "<dev> is a directory",
            stage: |s| {
                std::fs::create_dir(s.path("adir")).unwrap();
                Ok(Staged::new(s, s.path("adir").to_str().unwrap(), &["is a directory"]))
            },
            force_too: true,
        },
        Case {
            // Never written: it is refused before anything is opened for writing.
            name: "<dev> is a character device",
            stage: |s| Ok(Staged::new(s, "/dev/null", &["/dev/null", "character device"])),
            force_too: true,
        },
        Case {
            name: "<dev> is a symlink loop",
            stage: |s| {
                std::os::unix::fs::symlink(s.path("l2"), s.path("l1")).unwrap();
                std::os::unix::fs::symlink(s.path("l1"), s.path("l2")).unwrap();
                Ok(Staged::new(s, s.path("l1").to_str().unwrap(), &["symlink loop"]))
            },
            force_too: true,
        },
        Case {
            name: "ext4 image",
            stage: |s| {
                let img = ext4_image(s);
                Ok(Staged::new(s, s.img(), &["ext4 signature", "--force"]).watching(img))
            },
            force_too: false,
        },
        Case {
            name: "xfs image",
            stage: |s| {
                have("mkfs.xfs", "xfsprogs")?;
                let img = image(s, IMAGE);
                sh("mkfs.xfs", &["-q", "-f", s.img()]);
                Ok(Staged::new(s, s.img(), &["xfs signature"]).watching(img))
            },
            force_too: false,
        },
        Case {
            name: "swap signature",
            stage: |s| {
                let img = image(s, IMAGE);
                sh("mkswap", &[s.img()]);
                Ok(Staged::new(s, s.img(), &["swap signature"]).watching(img))
            },
            force_too: false,
        },
        Case {
            name: "LUKS header",
            stage: |s| {
                let img = image(s, IMAGE);
                let formatted = which("cryptsetup").is_some()
                    && std::process::Command::new("sh")
                        .args(["-c", &format!("printf pw | cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file - '{}'", s.img())])
                        .status()
                        .is_ok_and(|st| st.success());
                if !formatted {
                    // Detection is by magic: a LUKS1 header start will do.
                    eprintln!("  (cryptsetup unavailable: writing a LUKS magic by hand)");
                    use std::io::Write;
                    let mut f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
                    f.write_all(b"LUKS\xba\xbe\x00\x01aes\0").unwrap();
                }
                Ok(Staged::new(s, s.img(), &["crypto_LUKS signature"]).watching(img))
            },
            force_too: false,
        },
        Case {
            name: "MBR partition table",
            stage: |s| {
                have("sfdisk", "fdisk")?;
                let img = partitioned_image(s, "dos");
                Ok(Staged::new(s, s.img(), &["dos partition table"]).watching(img))
            },
            force_too: false,
        },
        Case {
            name: "GPT partition table",
            stage: |s| {
                have("sfdisk", "fdisk")?;
                let img = partitioned_image(s, "gpt");
                Ok(Staged::new(s, s.img(), &["gpt partition table"]).watching(img))
            },
            force_too: false,
        },
        Case {
            name: "btrfs with a foreign label",
            stage: |s| {
                let img = image(s, IMAGE);
                sh("mkfs.btrfs", &["-q", "-f", "-L", "other", s.img()]);
                Ok(Staged::new(s, s.img(), &["btrfs labelled 'other' signature"]).watching(img))
            },
            force_too: false,
        },
        Case {
            name: "image file attached to a mounted loop device (ext4)",
            stage: |s| {
                let img = ext4_image(s);
                let lo = s.attach(&img, false);
                s.mount(&lo, "other-mnt", "ro");
                Ok(Staged::new(s, s.img(), &[&format!("attached to {lo}"), "is mounted on", "losetup -d"]).watching(img))
            },
            force_too: true,
        },
        Case {
            name: "mounted loop device (ext4: matched by device number)",
            stage: |s| {
                let img = ext4_image(s);
                let lo = s.attach(&img, false);
                s.mount(&lo, "other-mnt", "ro");
                Ok(Staged::new(s, lo.clone(), &[&format!("{lo} is mounted on")]).watching(img).watching(&lo))
            },
            force_too: true,
        },
        Case {
            // Our own label, so only the use can refuse it; btrfs shows an
            // anonymous 0:N in mountinfo, so this is the source/sysfs match.
            name: "mounted loop device (btrfs with our label)",
            stage: |s| {
                let img = image(s, IMAGE);
                sh("mkfs.btrfs", &["-q", "-f", "-L", "btrfs-reclaim-repro", s.img()]);
                let lo = s.attach(&img, false);
                s.mount(&lo, "other-mnt", "ro");
                Ok(Staged::new(s, lo.clone(), &[&format!("{lo} is mounted on")]).watching(img).watching(&lo))
            },
            force_too: true,
        },
        Case {
            name: "image file of a mounted btrfs with our label",
            stage: |s| {
                let img = image(s, IMAGE);
                sh("mkfs.btrfs", &["-q", "-f", "-L", "btrfs-reclaim-repro", s.img()]);
                let lo = s.attach(&img, false);
                s.mount(&lo, "other-mnt", "ro");
                Ok(Staged::new(s, s.img(), &[&format!("attached to {lo}"), "is mounted on"]).watching(img))
            },
            force_too: true,
        },
        Case {
            name: "whole partitioned loop device whose partition is mounted",
            stage: |s| {
                have("sfdisk", "fdisk")?;
                let img = partitioned_image(s, "gpt");
                let lo = s.attach(&img, true);
                let p1 = format!("{lo}p1");
                if !Path::new(&p1).exists() {
                    return Err(format!("losetup -P made no {p1}"));
                }
                sh("mkfs.ext4", &["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", &p1]);
                s.mount(&p1, "other-mnt", "ro");
                Ok(Staged::new(s, lo.clone(), &[&format!("{p1} is mounted on")]).watching(img).watching(&lo))
            },
            force_too: true,
        },
        Case {
            name: "swap-activated loop device",
            stage: |s| {
                let img = image(s, IMAGE);
                sh("mkswap", &[s.img()]);
                let lo = s.attach(&img, false);
                let out = std::process::Command::new("swapon").arg(&lo).output().map_err(|e| format!("swapon: {e}"))?;
                if !out.status.success() {
                    return Err(format!("swapon {lo} does not work here: {}", String::from_utf8_lossy(&out.stderr).trim()));
                }
                Ok(Staged::new(s, lo.clone(), &[&format!("{lo} is in use as swap"), "swapoff"]).watching(img))
            },
            force_too: true,
        },
        Case {
            name: "image of 900 MiB (too small to reach the injection site)",
            stage: |s| {
                let img = image(s, 900 * MIB);
                Ok(Staged::new(s, s.img(), &["900 MiB is too small", "--force"]).watching(img))
            },
            force_too: false,
        },
        Case {
            name: "image of 1000 MiB with --force: too small for the built-in mkfs",
            stage: |s| {
                let img = image(s, 1000 * MIB);
                Ok(Staged::new(s, s.img(), &["too small for the built-in mkfs", "--mkfs external"]).watching(img).args(&["--force"]))
            },
            force_too: false,
        },
        Case {
            name: "--size 900M for a new image (too small)",
            stage: |s| Ok(Staged::new(s, s.img(), &["too small"]).args(&["--size", "900M"])),
            force_too: false,
        },
        Case {
            name: "<mnt> is a regular file",
            stage: |s| {
                let img = image(s, IMAGE);
                let f = s.path("afile");
                std::fs::write(&f, "keep me").unwrap();
                let mut st = Staged::new(s, s.img(), &["mount point", "not a directory"]).watching(img).watching(&f);
                st.mnt = f.to_str().unwrap().to_string();
                Ok(st)
            },
            force_too: true,
        },
        Case {
            name: "<mnt> already has something mounted on it",
            stage: |s| {
                let img = image(s, IMAGE);
                std::fs::create_dir_all(&s.mnt).unwrap();
                sh("mount", &["-t", "tmpfs", "-o", "size=1m", "brr-test", s.mnt()]);
                Ok(Staged::new(s, s.img(), &["already mounted"]).watching(img))
            },
            force_too: true,
        },
        Case {
            name: "mkfs.btrfs missing",
            stage: |s| {
                have("unshare", "util-linux")?;
                let img = image(s, IMAGE);
                let mut st = Staged::new(s, s.img(), &["mkfs.btrfs not found", "btrfs-progs"]).watching(img).args(&["--mkfs", "external"]);
                st.wrapper = mkfs_replaced_by(Path::new("/dev/null"));
                Ok(st)
            },
            force_too: true,
        },
        Case {
            name: "not root",
            stage: |s| {
                have("setpriv", "util-linux")?;
                let img = image(s, IMAGE);
                let mut st = Staged::new(s, s.img(), &["not root"]).watching(img);
                st.wrapper = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"].iter().map(|x| x.to_string()).collect();
                st.program = public_binary(s);
                Ok(st)
            },
            force_too: true,
        },
        Case {
            name: "root without CAP_SYS_ADMIN",
            stage: |s| {
                have("setpriv", "util-linux")?;
                let img = image(s, IMAGE);
                let mut st = Staged::new(s, s.img(), &["CAP_SYS_ADMIN"]).watching(img);
                st.wrapper = ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin"].iter().map(|x| x.to_string()).collect();
                Ok(st)
            },
            force_too: true,
        },
        Case {
            name: "--fill 0",
            stage: |s| Ok(Staged::new(s, s.img(), &["--fill 0"]).watching(image(s, IMAGE)).args(&["--fill", "0"])),
            force_too: true,
        },
        Case {
            name: "--fill 150",
            stage: |s| Ok(Staged::new(s, s.img(), &["--fill 150"]).watching(image(s, IMAGE)).args(&["--fill", "150"])),
            force_too: true,
        },
        Case {
            name: "--size 12Q",
            stage: |s| Ok(Staged::new(s, s.path("new.img").to_str().unwrap(), &["12Q"]).args(&["--size", "12Q"])),
            force_too: true,
        },
        Case {
            name: "--timeout -1",
            stage: |s| Ok(Staged::new(s, s.img(), &["--timeout"]).watching(image(s, IMAGE)).args(&["--timeout", "-1"])),
            force_too: true,
        },
        Case {
            name: "--timeout 0",
            stage: |s| Ok(Staged::new(s, s.img(), &["--timeout 0"]).watching(image(s, IMAGE)).args(&["--timeout", "0"])),
            force_too: true,
        },
        Case {
            name: "--workers 0",
            stage: |s| Ok(Staged::new(s, s.img(), &["--workers 0"]).watching(image(s, IMAGE)).args(&["--stress", "10", "--workers", "0"])),
            force_too: true,
        },
    ]
}

/// Runs one staged row (with or without --force) and checks the answer.
fn check_refusal(s: &Scratch, st: &Staged, force: bool) -> Result<String, String> {
    let before: Vec<Vec<u8>> = st.watch.iter().map(|p| ends(p)).collect();
    let dev_existed = std::fs::symlink_metadata(&st.dev).is_ok();
    let (loops, mounts) = (s.loops(), s.mounts());
    let mut argv: Vec<String> = st.wrapper.clone();
    argv.push(st.program.to_str().unwrap().to_string());
    argv.extend(st.args.iter().cloned());
    if force {
        argv.push("--force".into());
    }
    argv.push(st.dev.clone());
    argv.push(st.mnt.clone());
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("run {argv:?}: {e}"))?;
    let r = Run::from(out);
    let ctx = || format!("\n  argv: {argv:?}\n  exit {}\n  stdout: {}\n  stderr: {}", r.code, r.stdout.trim(), r.stderr.trim());
    if r.code != 2 {
        return Err(format!("exit {} instead of 2{}", r.code, ctx()));
    }
    let msgs = message_lines(&r.stderr);
    if msgs.len() != 1 {
        return Err(format!("{} message lines on stderr instead of 1{}", msgs.len(), ctx()));
    }
    let msg = msgs[0];
    if !msg.starts_with("btrfs-reclaim-repro: ") {
        return Err(format!("message without the program name{}", ctx()));
    }
    for e in &st.expect {
        if !msg.contains(e.as_str()) {
            return Err(format!("message does not say {e:?}{}", ctx()));
        }
    }
    if !r.stdout.is_empty() {
        let first = r.stdout.lines().next().unwrap_or("");
        if !first.contains("REFUSED (exit 2)") {
            return Err(format!("stdout verdict is not REFUSED{}", ctx()));
        }
        let why = msg.trim_start_matches("btrfs-reclaim-repro: ");
        if !r.stdout.contains(why) {
            return Err(format!("the verdict's reason is not the message{}", ctx()));
        }
    }
    for (p, b) in st.watch.iter().zip(&before) {
        if ends(p) != *b {
            return Err(format!("{}: first or last MiB changed{}", p.display(), ctx()));
        }
    }
    if !dev_existed && std::fs::symlink_metadata(&st.dev).is_ok() {
        return Err(format!("{} was created{}", st.dev, ctx()));
    }
    if s.loops() != loops || s.mounts() != mounts {
        return Err(format!("loop devices or mounts changed: {:?} {:?} -> {:?} {:?}{}", loops, mounts, s.loops(), s.mounts(), ctx()));
    }
    Ok(msg.to_string())
}

#[test]
fn every_refusal_exits_2_with_one_line_and_writes_nothing() {
    if !privileged("every_refusal_exits_2_with_one_line_and_writes_nothing") {
        return;
    }
    let ci = std::env::var_os("CI").is_some();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (i, case) in cases().into_iter().enumerate() {
        let result = std::panic::catch_unwind(|| -> Result<Option<String>, String> {
            // Its own scratch directory: dropped (swapoff, unmount, detach,
            // delete) at the end of the row, even when it panics.
            let s = Scratch::new(&format!("refuse{i}"));
            let st = match (case.stage)(&s) {
                Ok(st) => st,
                Err(why) if ci => {
                    return Err(format!("cannot be staged in CI: {why}"));
                }
                Err(why) => {
                    eprintln!("SKIP {}: {why}", case.name);
                    return Ok(None);
                }
            };
            let msg = check_refusal(&s, &st, false)?;
            if case.force_too {
                check_refusal(&s, &st, true).map_err(|e| format!("with --force: {e}"))?;
            }
            Ok(Some(msg))
        });
        match result {
            Ok(Ok(Some(msg))) => {
                ran += 1;
                eprintln!("ok   {}{}\n       {msg}", case.name, if case.force_too { " (also with --force)" } else { "" });
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => failures.push(format!("{}: {e}", case.name)),
            Err(_) => failures.push(format!("{}: panicked (see above)", case.name)),
        }
    }
    assert!(failures.is_empty(), "{} of the refusals failed:\n{}", failures.len(), failures.join("\n"));
    assert!(ran >= 20, "only {ran} refusals ran");
}

/// What is not refused: our own label, and what --force overrides. Held at
/// the start of mkfs (BRR_TEST_PAUSE) so nothing is written, then stopped
/// with SIGTERM: exit 143 proves preflight passed.
#[test]
fn our_label_and_forced_devices_pass_preflight() {
    if !privileged("our_label_and_forced_devices_pass_preflight") {
        return;
    }
    type Row<'a> = (&'a str, fn(&Scratch), &'a [&'a str]);
    let rows: [Row; 4] = [
        ("btrfs with our label", |s| {
            sparse(&s.img, IMAGE);
            sh("mkfs.btrfs", &["-q", "-f", "-L", "btrfs-reclaim-repro", s.img()]);
        }, &[]),
        ("btrfs with a foreign label, --force", |s| {
            sparse(&s.img, IMAGE);
            sh("mkfs.btrfs", &["-q", "-f", "-L", "other", s.img()]);
        }, &["--force"]),
        ("ext4 image, --force", |s| {
            ext4_image(s);
        }, &["-f"]),
        ("900 MiB image, --force (mkfs.btrfs: the built-in mkfs needs 1 GiB)", |s| sparse(&s.img, 900 * MIB), &["--force", "--mkfs", "external"]),
    ];
    for (i, (name, stage, extra)) in rows.into_iter().enumerate() {
        let s = Scratch::new(&format!("accept{i}"));
        stage(&s);
        let before = ends(&s.img);
        let mut args: Vec<&str> = extra.to_vec();
        args.extend([s.img(), s.mnt()]);
        let mut r = Running::start(&bin(), &args, &[("BRR_TEST_PAUSE", "mkfs")]);
        let paused = r.wait_for_line("pausing at mkfs", Duration::from_secs(30));
        if paused {
            send_signal(r.pid(), "TERM");
        }
        let out = r.finish(Duration::from_secs(30));
        assert!(paused, "{name}: never reached mkfs:\n{}\n{}", out.stdout, out.stderr);
        assert_eq!(out.code, 143, "{name}:\n{}\n{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("INTERRUPTED"), "{name}: {}", out.stdout);
        assert!(!out.stderr.contains("refusing"), "{name}: {}", out.stderr);
        assert!(ends(&s.img) == before, "{name}: the image changed before mkfs");
        s.assert_clean();
        eprintln!("ok   {name}");
    }
}

/// mkfs.btrfs that starts and fails is no refusal: INCONCLUSIVE (125) with
/// its stderr, and nothing left attached.
#[test]
fn failing_mkfs_is_inconclusive_with_its_stderr() {
    if !privileged("failing_mkfs_is_inconclusive_with_its_stderr") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new("mkfsfail");
    sparse(&s.img, 3 << 30);
    let fake = s.path("fake-mkfs");
    std::fs::write(&fake, "#!/bin/sh\necho 'ERROR: fake mkfs refuses to work' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = ends(&s.img);
    let mut argv = mkfs_replaced_by(&fake);
    argv.extend([bin().to_str().unwrap().to_string(), "--mkfs".into(), "external".into(), s.img().to_string(), s.mnt().to_string()]);
    let out: Run = std::process::Command::new(&argv[0]).args(&argv[1..]).stdin(std::process::Stdio::null()).output().unwrap().into();
    assert_eq!(out.code, 125, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("INCONCLUSIVE"), "{}", out.stdout);
    assert!(out.stdout.contains("fake mkfs refuses to work"), "{}", out.stdout);
    assert!(!out.stderr.contains("refusing"), "{}", out.stderr);
    assert!(ends(&s.img) == before);
    s.assert_clean();
}
