//! The guest side: this binary as PID 1 of the initramfs the host packed.
//! It mounts what the pass needs, checks that the kernel has it, runs the
//! normal pass on /dev/vda in a child (the kernel panics when init exits or
//! crashes, and sends init no default-action signal), reaps every orphan,
//! hands the verdict to the host in frames, and powers off without sync.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kernel::kmsg::events::Tracker;
use crate::sys::vm::{self as sysvm, Reaped};
use crate::judge::verdict::{Cause, Kind};

use super::frame;
use super::qemu::RESULTS_SERIAL;
use super::triage::GUEST_START;

/// Is this process the guest's init? PID 1 and the host's argv file: a
/// PID 1 in a container without it is not ours to take over.
pub fn is_guest() -> bool {
    sysvm::getpid() == 1 && Path::new(super::GUEST_ARGV).exists()
}

/// Set in the pass's environment: it runs in the guest, for the host.
const PASS_ENV: &str = "BRR_GUEST_PASS";

/// Is this process the pass that the guest's init started?
pub fn is_guest_pass() -> bool {
    std::env::var_os(PASS_ENV).is_some_and(|v| v == "1")
}

pub fn main() -> ! {
    let args = guest_argv();
    let json = args.iter().any(|a| a == "--json");
    let frames = match run(&args) {
        Ok(frames) => frames,
        Err((reason, cause)) => {
            println!("BRR-GUEST {reason}");
            let kernel = crate::kernel::host::kernel_release();
            let (code, out) = match crate::judge::report::ktap::asked(&args) {
                Some(test) => {
                    let (doc, code) = super::ktap::printout(test, Kind::Inconclusive, reason, Some(cause), &kernel, &Tracker::default(), None);
                    (code, doc)
                }
                None => {
                    let (text, js) = super::printout(Kind::Inconclusive, reason, Some(cause), &kernel, &Tracker::default());
                    (Kind::Inconclusive.exit_code(), if json { js } else { text })
                }
            };
            // No pass ran: its part of the time is nil.
            vec![("exit", code.to_string().into_bytes()), ("stdout", out.into_bytes()), ("facts", facts(0.0))]
        }
    };
    hand_over(&frames);
    // Test hook: brr.test_no_poweroff=1 stays up as a wedged kernel would.
    if std::fs::read_to_string("/proc/cmdline").is_ok_and(|c| c.split_whitespace().any(|w| w == "brr.test_no_poweroff=1")) {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    let err = sysvm::power_off();
    println!("BRR-GUEST {err}");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

type Frames = Vec<(&'static str, Vec<u8>)>;

fn config(reason: String) -> (String, Cause) {
    (reason, Cause::VmKernelConfig)
}

/// The pass's argv (after the program name), as the host packed it.
fn guest_argv() -> Vec<String> {
    split_argv(&std::fs::read(super::GUEST_ARGV).unwrap_or_default())
}

fn run(argv: &[String]) -> Result<Frames, (String, Cause)> {
    mount_pseudo_filesystems()?;
    println!("{GUEST_START} uptime={:.2}", uptime());
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    // Test hook: brr.test_hang=1 stops PID 1 here (the host's timeout must end it).
    if cmdline_arg(&cmdline, "brr.test_hang=").is_some() {
        println!("[   0.0s] PID 1 stopped by brr.test_hang (a test hook)");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    if !has_btrfs(&std::fs::read_to_string("/proc/filesystems").unwrap_or_default()) {
        return Err(config("the kernel has no btrfs (not in /proc/filesystems): it needs CONFIG_BTRFS_FS=y (built in: the guest loads no modules)".into()));
    }
    if !wait_for(Path::new("/dev/vda"), Duration::from_secs(2)) {
        return Err(config("no /dev/vda (the virtio disk under test): the kernel needs CONFIG_VIRTIO_BLK=y and CONFIG_VIRTIO_PCI=y".into()));
    }
    pass(argv, cmdline_arg(&cmdline, "brr.test_pause="))
}

fn mount_pseudo_filesystems() -> Result<(), (String, Cause)> {
    for dir in ["/dev", "/proc", "/sys", "/mnt"] {
        let _ = std::fs::create_dir_all(dir);
    }
    for (fs, at, option) in [("devtmpfs", "/dev", "CONFIG_DEVTMPFS"), ("proc", "/proc", "CONFIG_PROC_FS"), ("sysfs", "/sys", "CONFIG_SYSFS")] {
        sysvm::mount_pseudo(fs, Path::new(at)).map_err(|e| config(format!("{e}: the kernel needs {option}=y")))?;
    }
    // Best effort: kmemleak and clear_warn_once live in debugfs, the hunt's
    // race windows in tracefs.
    let _ = sysvm::mount_pseudo("debugfs", Path::new("/sys/kernel/debug"));
    let _ = sysvm::mount_pseudo("tracefs", Path::new("/sys/kernel/tracing"));
    Ok(())
}

/// The pass in a child (ourselves as /init with the host's `argv`),
/// reaping everything until it ends; its exit, stdout, log and times as
/// the frames for the host. `pause`: the test hook brr.test_pause=<phase>.
fn pass(argv: &[String], pause: Option<String>) -> Result<Frames, (String, Cause)> {
    let stdout = std::fs::File::create("/brr/stdout").map_err(|e| (format!("create /brr/stdout: {e}"), Cause::SetupFailed))?;
    let mut cmd = Command::new("/init");
    // stderr through a pipe: on the console (a tty) the progress would
    // rewrite its lines in place with \r, which the host cannot forward.
    cmd.args(argv).env_clear().env("PATH", "/").env("HOME", "/").env(PASS_ENV, "1").stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped());
    // Test hook: brr.test_pause=<phase> holds the pass there (BRR_TEST_PAUSE).
    if let Some(p) = pause {
        cmd.env("BRR_TEST_PAUSE", p);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| (format!("start the pass (/init {}): {e}", argv.join(" ")), Cause::SetupFailed))?;
    if let Some(mut err) = child.stderr.take() {
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::stderr()));
    }
    // Reap everything: the hunt's helpers, abandoned when stuck, become ours.
    let how = loop {
        match sysvm::wait_any() {
            Ok((pid, how)) if pid as u32 == child.id() => break how,
            Ok(_) => {}
            Err(e) => return Err((format!("{e}"), Cause::SetupFailed)),
        }
    };
    let pass = started.elapsed().as_secs_f64();
    let code = match how {
        Reaped::Exited(c) => c,
        Reaped::Signaled(sig) => {
            // No verdict from the pass: the host reads the console (kernel
            // trouble that killed it, or a bug of ours).
            println!("BRR-GUEST the pass died of {}", sig.name());
            return Ok(vec![("facts", facts(pass))]);
        }
    };
    let mut frames: Frames = vec![("exit", code.to_string().into_bytes()), ("stdout", std::fs::read("/brr/stdout").unwrap_or_default()), ("facts", facts(pass))];
    if let Ok(log) = std::fs::read(super::GUEST_LOG) {
        frames.push(("log", log));
    }
    Ok(frames)
}

/// The value of `key` (`brr.test_pause=`) on the kernel command line.
fn cmdline_arg(cmdline: &str, key: &str) -> Option<String> {
    cmdline.split_whitespace().find_map(|w| w.strip_prefix(key).map(str::to_string))
}

/// btrfs among /proc/filesystems' lines (`nodev\tproc`, `\tbtrfs`).
fn has_btrfs(filesystems: &str) -> bool {
    filesystems.lines().any(|l| l.split_whitespace().last() == Some("btrfs"))
}

/// Arguments as the host packed them: NUL-separated.
fn split_argv(bytes: &[u8]) -> Vec<String> {
    bytes.split(|&b| b == 0).filter(|x| !x.is_empty()).map(|x| String::from_utf8_lossy(x).into_owned()).collect()
}

fn facts(pass: f64) -> Vec<u8> {
    format!("pass_seconds={pass:.3}\nuptime_end={:.3}\n", uptime()).into_bytes()
}

fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime").ok().and_then(|s| s.split_whitespace().next()?.parse().ok()).unwrap_or(0.0)
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while !path.exists() {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// The frames on the results disk (the clean channel: nothing else writes
/// there); on the console, with printk kept off it, the small ones always
/// and the verdict itself only when the disk could not take it (a long
/// run's JSON costs seconds on an emulated UART).
fn hand_over(frames: &Frames) {
    let bytes: Vec<u8> = frames.iter().flat_map(|(name, p)| frame::encode(name, p)).collect();
    let on_disk = match results_disk() {
        Some(dev) => {
            let wrote = std::fs::OpenOptions::new().write(true).open(&dev).and_then(|mut f| {
                f.write_all(&bytes)?;
                f.sync_all()
            });
            if let Err(e) = &wrote {
                println!("BRR-GUEST results disk {dev}: {e}");
            }
            wrote.is_ok()
        }
        None => false,
    };
    let _ = sysvm::console_level(1);
    let mut out = std::io::stdout().lock();
    for (name, p) in frames.iter().filter(|(n, _)| *n != "log" && (!on_disk || *n != "stdout")) {
        let _ = out.write_all(&frame::encode(name, p));
    }
    let _ = out.flush();
}

/// /dev/vdX whose virtio serial is the host's results disk.
fn results_disk() -> Option<String> {
    let dir = std::fs::read_dir("/sys/block").ok()?;
    dir.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let serial = std::fs::read_to_string(e.path().join("serial")).ok()?;
        (serial.trim() == RESULTS_SERIAL).then(|| format!("/dev/{name}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_filesystems_and_argv_as_the_guest_reads_them() {
        let cmdline = "console=ttyS0 brr.test_pause=fill quiet";
        assert_eq!(cmdline_arg(cmdline, "brr.test_pause="), Some("fill".into()));
        assert_eq!(cmdline_arg(cmdline, "brr.test_hang="), None);
        assert!(has_btrfs("nodev\tproc\n\tbtrfs\n"));
        assert!(!has_btrfs("nodev\tbtrfsx\n\text4\n"));
        assert_eq!(split_argv(b"--size\x003G\x00\x00/dev/vda\x00"), ["--size", "3G", "/dev/vda"]);
        assert!(split_argv(b"").is_empty());
    }
}
