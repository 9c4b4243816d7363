//! The calls of `--vm`: on the host, starting QEMU so that it dies with us
//! and holds our (already unlinked) files by descriptor, and asking /dev/kvm
//! its API version; in the guest, what a PID 1 does (mount the pseudo
//! filesystems, reap, quiet the console, power off).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};

use super::process::Signal;
use super::{check, cstring};

pub fn getpid() -> i32 {
    // SAFETY: getpid cannot fail and takes no arguments.
    unsafe { libc::getpid() }
}

/// Spawns `cmd` with each `(fd, at)` of `fds` dup2'ed to descriptor `at`
/// (inherited across exec; the child opens them as /proc/self/fd/<at>), and
/// PR_SET_PDEATHSIG SIGKILL: a host process killed with SIGKILL takes the
/// child with it.
pub fn spawn_tied(cmd: &mut Command, fds: &[(RawFd, RawFd)]) -> io::Result<Child> {
    let parent = getpid();
    let mut fds = fds.to_vec();
    let above = fds.iter().map(|&(_, at)| at).max().unwrap_or(0) + 1;
    // SAFETY: the closure runs in the forked child before exec and calls
    // only async-signal-safe functions (prctl, getppid, fcntl, dup2); it
    // allocates nothing (`fds` was copied before the fork).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then no signal comes.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            // Every source above every target first (closed at exec): a
            // source that is another's target (a host process started with
            // 100 descriptors open) would be overwritten by that dup2.
            for (fd, _) in fds.iter_mut() {
                let moved = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, above);
                if moved == -1 {
                    return Err(io::Error::last_os_error());
                }
                *fd = moved;
            }
            // dup2 onto another number: the copy is inherited across exec.
            for &(fd, at) in &fds {
                if libc::dup2(fd, at) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let prog = cmd.get_program().to_string_lossy().into_owned();
    cmd.spawn().map_err(super::with("spawn", prog))
}

/// KVM_GET_API_VERSION on an open /dev/kvm (12 since Linux 2.6.22).
pub fn kvm_api_version(kvm: &File) -> io::Result<i32> {
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    // SAFETY: the ioctl takes no argument and returns an int.
    let ret = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_GET_API_VERSION as libc::Ioctl, 0) };
    check(ret as libc::c_long, "ioctl(KVM_GET_API_VERSION)", "/dev/kvm").map(|v| v as i32)
}

/// mount -t `fstype` `fstype` `target` (proc, sysfs, devtmpfs, debugfs, tracefs).
pub fn mount_pseudo(fstype: &str, target: &Path) -> io::Result<()> {
    let what = format!("{fstype} on {}", target.display());
    let t = cstring(target)?;
    let f = cstring(Path::new(fstype))?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive
    // the call; no data argument.
    let ret = unsafe { libc::mount(f.as_ptr(), t.as_ptr(), f.as_ptr(), 0, std::ptr::null()) };
    check(ret as libc::c_long, "mount", &what).map(|_| ())
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaped {
    Exited(i32),
    Signaled(Signal),
}

/// waitpid(-1): any child, blocking; (pid, how it ended). EINTR is retried.
pub fn wait_any() -> io::Result<(i32, Reaped)> {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid int to write.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        check(pid as libc::c_long, "waitpid", "any child")?;
        let how = if libc::WIFSIGNALED(status) { Reaped::Signaled(Signal(libc::WTERMSIG(status))) } else { Reaped::Exited(libc::WEXITSTATUS(status)) };
        return Ok((pid, how));
    }
}

/// klogctl(SYSLOG_ACTION_CONSOLE_LEVEL, level) (`dmesg -n`): keeps printk
/// off the console while the verdict goes out.
pub fn console_level(level: i32) -> io::Result<()> {
    // SAFETY: SYSLOG_ACTION_CONSOLE_LEVEL reads no buffer.
    let ret = unsafe { libc::klogctl(8, std::ptr::null_mut(), level) };
    check(ret as libc::c_long, "klogctl(CONSOLE_LEVEL)", &level.to_string()).map(|_| ())
}

/// reboot(RB_POWER_OFF) without sync (the disks are scratch; a sync can
/// hang after an oops); then halt; it returns only if both fail.
pub fn power_off() -> io::Error {
    // SAFETY: reboot takes an integer command.
    unsafe {
        libc::reboot(libc::RB_POWER_OFF);
        libc::reboot(libc::RB_HALT_SYSTEM);
    }
    error_now("reboot(RB_POWER_OFF)", "the guest")
}

fn error_now(call: &'static str, target: &str) -> io::Error {
    super::error(call, target, io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::Stdio;

    /// Two files whose descriptors are each other's targets: each arrives
    /// where it was asked for, not the one dup2'ed over the other.
    #[test]
    fn descriptors_arrive_where_asked_even_when_sources_are_targets() {
        let dir = std::env::temp_dir();
        let file = |name: &str, text: &[u8]| {
            let path = dir.join(format!("brr-spawn-tied-{}-{name}", std::process::id()));
            let mut f = File::create(&path).unwrap();
            f.write_all(text).unwrap();
            let f = File::open(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            f
        };
        let (a, b) = (file("a", b"A"), file("b", b"B"));
        // SAFETY: 901 and 900 are not used by this test process otherwise.
        let (a_at, b_at) = unsafe { (libc::fcntl(a.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 901), libc::fcntl(b.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 900)) };
        assert!(a_at >= 901 && b_at >= 900 && a_at != b_at, "{a_at} {b_at}");
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", &format!("cat /proc/self/fd/{b_at} /proc/self/fd/{a_at}")]).stdout(Stdio::piped());
        // a goes where b is, b where a is.
        let out = spawn_tied(&mut cmd, &[(a_at, b_at), (b_at, a_at)]).unwrap().wait_with_output().unwrap();
        // SAFETY: the two descriptors this test made.
        unsafe {
            libc::close(a_at);
            libc::close(b_at);
        }
        assert_eq!(String::from_utf8_lossy(&out.stdout), "AB");
    }
}
