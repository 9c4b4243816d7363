//! Loop device ioctls (include/uapi/linux/loop.h).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::check;

const LOOP_SET_FD: u64 = 0x4C00;
const LOOP_CLR_FD: u64 = 0x4C01;
const LOOP_SET_STATUS64: u64 = 0x4C04;
const LOOP_CONFIGURE: u64 = 0x4C0A;
const LOOP_CTL_GET_FREE: u64 = 0x4C82;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

// struct loop_info64: lo_device, lo_inode, lo_rdevice, lo_offset,
// lo_sizelimit (u64 each), lo_number, lo_encrypt_type, lo_encrypt_key_size,
// lo_flags (u32 each), lo_file_name[64], lo_crypt_name[64],
// lo_encrypt_key[32], lo_init[2] (u64).
const LOOP_INFO64_SIZE: usize = 232;
const LO_FLAGS_OFFSET: usize = 52;
const LO_FILE_NAME_OFFSET: usize = 56;

/// LOOP_CTL_GET_FREE: the number of a free loop device (allocating one if
/// needed).
pub fn get_free(control: &File) -> io::Result<u32> {
    // SAFETY: LOOP_CTL_GET_FREE takes no argument.
    let ret = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as libc::Ioctl, 0) };
    check(ret as libc::c_long, "ioctl(LOOP_CTL_GET_FREE)", "/dev/loop-control").map(|n| n as u32)
}

fn info64(backing_name: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut info = vec![0u8; LOOP_INFO64_SIZE];
    info[LO_FLAGS_OFFSET..LO_FLAGS_OFFSET + 4].copy_from_slice(&LO_FLAGS_AUTOCLEAR.to_ne_bytes());
    let name = backing_name.as_os_str().as_bytes();
    let n = name.len().min(63);
    info[LO_FILE_NAME_OFFSET..LO_FILE_NAME_OFFSET + n].copy_from_slice(&name[..n]);
    info
}

/// Binds `backing` to the loop device with autoclear set, so the kernel
/// detaches it by itself once the last user closes it. Tries LOOP_CONFIGURE
/// (5.8+) and falls back to LOOP_SET_FD + LOOP_SET_STATUS64.
pub fn attach(loopdev: &File, loop_path: &Path, backing: &File, backing_name: &Path) -> io::Result<()> {
    let what = format!("{} <- {}", loop_path.display(), backing_name.display());
    // struct loop_config: fd u32, block_size u32, info loop_info64, reserved[8] u64
    let mut config = vec![0u8; 8 + LOOP_INFO64_SIZE + 64];
    config[0..4].copy_from_slice(&(backing.as_raw_fd() as u32).to_ne_bytes());
    config[8..8 + LOOP_INFO64_SIZE].copy_from_slice(&info64(backing_name));
    // SAFETY: config is a buffer of sizeof(struct loop_config) bytes.
    let ret = unsafe { libc::ioctl(loopdev.as_raw_fd(), LOOP_CONFIGURE as libc::Ioctl, config.as_mut_ptr()) };
    match check(ret as libc::c_long, "ioctl(LOOP_CONFIGURE)", &what) {
        Ok(_) => return Ok(()),
        Err(e) if matches!(super::errno_of(&e), Some(libc::EINVAL) | Some(libc::ENOTTY)) => {}
        Err(e) => return Err(e),
    }
    // SAFETY: LOOP_SET_FD takes the backing fd as its integer argument.
    let ret = unsafe { libc::ioctl(loopdev.as_raw_fd(), LOOP_SET_FD as libc::Ioctl, backing.as_raw_fd() as libc::c_ulong) };
    check(ret as libc::c_long, "ioctl(LOOP_SET_FD)", &what)?;
    let mut info = info64(backing_name);
    // SAFETY: info is a buffer of sizeof(struct loop_info64) bytes.
    let ret = unsafe { libc::ioctl(loopdev.as_raw_fd(), LOOP_SET_STATUS64 as libc::Ioctl, info.as_mut_ptr()) };
    if let Err(e) = check(ret as libc::c_long, "ioctl(LOOP_SET_STATUS64)", &what) {
        let _ = detach(loopdev, loop_path);
        return Err(e);
    }
    Ok(())
}

/// LOOP_CLR_FD. ENXIO means it was already detached (autoclear did it).
pub fn detach(loopdev: &File, loop_path: &Path) -> io::Result<()> {
    // SAFETY: LOOP_CLR_FD takes no argument.
    let ret = unsafe { libc::ioctl(loopdev.as_raw_fd(), LOOP_CLR_FD as libc::Ioctl, 0) };
    match check(ret as libc::c_long, "ioctl(LOOP_CLR_FD)", &loop_path.display().to_string()) {
        Err(e) if super::errno_of(&e) == Some(libc::ENXIO) => Ok(()),
        other => other.map(|_| ()),
    }
}
