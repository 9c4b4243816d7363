//! Swap syscalls: swapon(2), swapoff(2), and the NOCOW flag a btrfs
//! swapfile needs (btrfs_swap_activate() refuses COW and compressed files).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::btrfs::{ior, iow};
use super::{check, cstring};

const FS_IOC_GETFLAGS: u64 = ior(b'f' as u64, 1, 8);
const FS_IOC_SETFLAGS: u64 = iow(b'f' as u64, 2, 8);
/// FS_NOCOW_FL: btrfs turns it into BTRFS_INODE_NODATACOW (and no
/// checksums); it takes only on an empty file.
const FS_NOCOW_FL: libc::c_int = 0x0080_0000;

/// swapon(2) with `flags` (0: the kernel's own priority).
pub fn swapon(path: &Path, flags: libc::c_int) -> io::Result<()> {
    let p = cstring(path)?;
    // SAFETY: p is a valid NUL-terminated string for the duration of the call.
    let ret = unsafe { libc::swapon(p.as_ptr(), flags) };
    check(ret as libc::c_long, "swapon", &path.display().to_string()).map(|_| ())
}

/// swapoff(2): pages swapped out come back first; on a kernel whose
/// reclaim worker never schedules (PREEMPT_NONE) its synchronize_rcu()
/// never returns: call it where a hang cannot block the caller.
pub fn swapoff(path: &Path) -> io::Result<()> {
    let p = cstring(path)?;
    // SAFETY: p is a valid NUL-terminated string for the duration of the call.
    let ret = unsafe { libc::swapoff(p.as_ptr()) };
    check(ret as libc::c_long, "swapoff", &path.display().to_string()).map(|_| ())
}

/// The page size: a swap header is one page, and swapon reads it as one.
pub fn page_size() -> usize {
    // SAFETY: sysconf takes no pointers.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

/// Sets FS_NOCOW_FL on `file` (empty: btrfs ignores it on a file with data).
pub fn set_nocow(file: &File, what: &Path) -> io::Result<()> {
    let name = what.display().to_string();
    let mut flags: libc::c_int = 0;
    // SAFETY: the fd is open for the call; the kernel reads and writes one
    // int (fs/ioctl.c uses an int whatever the request's encoded size).
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_GETFLAGS as libc::Ioctl, &mut flags as *mut libc::c_int) };
    check(ret as libc::c_long, "ioctl(FS_IOC_GETFLAGS)", &name)?;
    flags |= FS_NOCOW_FL;
    // SAFETY: as above; the kernel reads one int.
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_SETFLAGS as libc::Ioctl, &flags as *const libc::c_int) };
    check(ret as libc::c_long, "ioctl(FS_IOC_SETFLAGS)", &name).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_and_errors_name_the_call() {
        assert_eq!(FS_IOC_GETFLAGS, 0x8008_6601);
        assert_eq!(FS_IOC_SETFLAGS, 0x4008_6602);
        let e = swapoff(Path::new("/nonexistent/brr-swap")).unwrap_err();
        assert!(e.to_string().starts_with("swapoff /nonexistent/brr-swap: "), "{e}");
    }
}
