//! Filesystem syscalls: mount, umount2, statfs, syncfs, fallocate, fsetxattr.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::{check, cstring};

/// mount(2) of a btrfs filesystem. `flags` are MS_* bits (MS_NOATIME must be a
/// flag: btrfs rejects `noatime` in the data string).
pub fn mount_btrfs(source: &Path, target: &Path, flags: libc::c_ulong, data: &str) -> io::Result<()> {
    let src = cstring(source)?;
    let tgt = cstring(target)?;
    let fstype = c"btrfs";
    let what = format!("{} on {} ({data})", source.display(), target.display());
    let data_c = std::ffi::CString::new(data)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("mount {what}: the options contain a NUL byte")))?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let ret = unsafe {
        libc::mount(src.as_ptr(), tgt.as_ptr(), fstype.as_ptr(), flags, data_c.as_ptr().cast())
    };
    check(ret as libc::c_long, "mount", &what).map(|_| ())
}

/// umount2(2). `lazy` adds MNT_DETACH.
pub fn umount(target: &Path, lazy: bool) -> io::Result<()> {
    let tgt = cstring(target)?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: tgt is a valid NUL-terminated string for the duration of the call.
    let ret = unsafe { libc::umount2(tgt.as_ptr(), flags) };
    check(ret as libc::c_long, "umount2", &target.display().to_string()).map(|_| ())
}

/// What statfs(2) says about free space, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct FsSpace {
    /// f_bavail in bytes.
    pub avail_bytes: u64,
}

pub fn statfs(path: &Path) -> io::Result<FsSpace> {
    let p = cstring(path)?;
    // SAFETY: statfs is plain old data; all-zero is a valid value.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: p is a valid C string and buf a valid, writable statfs.
    let ret = unsafe { libc::statfs(p.as_ptr(), &mut buf) };
    check(ret as libc::c_long, "statfs", &path.display().to_string())?;
    Ok(FsSpace { avail_bytes: buf.f_bavail as u64 * buf.f_bsize as u64 })
}

/// syncfs(2) on the filesystem holding `file`.
pub fn syncfs(file: &File, what: &Path) -> io::Result<()> {
    // SAFETY: the fd is owned by `file` and open for the whole call.
    let ret = unsafe { libc::syncfs(file.as_raw_fd()) };
    check(ret as libc::c_long, "syncfs", &what.display().to_string()).map(|_| ())
}

/// fallocate(2) mode 0: allocate `len` bytes of extents from `offset`.
pub fn fallocate(file: &File, offset: u64, len: u64, what: &Path) -> io::Result<()> {
    // SAFETY: the fd is owned by `file`; fallocate takes no pointers.
    let ret = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset as libc::off_t, len as libc::off_t) };
    check(ret as libc::c_long, "fallocate", &what.display().to_string()).map(|_| ())
}

/// fsetxattr(2): sets (creates or replaces) the extended attribute `name`.
pub fn fsetxattr(file: &File, name: &str, value: &[u8], what: &Path) -> io::Result<()> {
    let name_c = std::ffi::CString::new(name).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("fsetxattr {} ({name:?}): the xattr name contains a NUL byte", what.display()))
    })?;
    // SAFETY: the fd is owned by `file`; name_c is a valid C string and value
    // a valid slice, both outliving the call.
    let ret = unsafe { libc::fsetxattr(file.as_raw_fd(), name_c.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    check(ret as libc::c_long, "fsetxattr", &format!("{} ({name})", what.display())).map(|_| ())
}

/// Size in bytes of a block device (BLKGETSIZE64).
pub fn block_device_size(file: &File, what: &Path) -> io::Result<u64> {
    const BLKGETSIZE64: u64 = super::btrfs::ior(0x12, 114, 8);
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which is valid.
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64 as libc::Ioctl, &mut size as *mut u64) };
    check(ret as libc::c_long, "ioctl(BLKGETSIZE64)", &what.display().to_string())?;
    Ok(size)
}

/// mount -t debugfs debugfs /sys/kernel/debug (for kmemleak).
pub fn mount_debugfs() -> io::Result<()> {
    let target = c"/sys/kernel/debug";
    let fstype = c"debugfs";
    // SAFETY: all pointers are valid NUL-terminated static strings; no data.
    let ret = unsafe { libc::mount(fstype.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    check(ret as libc::c_long, "mount", "debugfs on /sys/kernel/debug").map(|_| ())
}

/// One extent of a file as FIEMAP reports it. On btrfs `physical` is the
/// logical address in the filesystem's address space: the block group that
/// holds it is the one whose [start, start + length) contains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub physical: u64,
    pub length: u64,
}

/// _IOWR('f', 11, struct fiemap): the size is the header's, 32 bytes.
const FS_IOC_FIEMAP: u64 = super::btrfs::iowr(b'f' as u64, 11, 32);

/// FS_IOC_FIEMAP: the file's extents (up to 64; enough for a 32 MiB file,
/// which btrfs preallocates in a few).
pub fn fiemap(file: &File, what: &Path) -> io::Result<Vec<Extent>> {
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct FiemapExtent {
        fe_logical: u64,
        fe_physical: u64,
        fe_length: u64,
        fe_reserved64: [u64; 2],
        fe_flags: u32,
        fe_reserved: [u32; 3],
    }
    #[repr(C)]
    struct Fiemap {
        fm_start: u64,
        fm_length: u64,
        fm_flags: u32,
        fm_mapped_extents: u32,
        fm_extent_count: u32,
        fm_reserved: u32,
        fm_extents: [FiemapExtent; 64],
    }
    const FIEMAP_FLAG_SYNC: u32 = 1;
    // SAFETY: Fiemap is plain old data; all-zero is a valid value.
    let mut buf: Fiemap = unsafe { std::mem::zeroed() };
    buf.fm_length = u64::MAX;
    buf.fm_flags = FIEMAP_FLAG_SYNC;
    buf.fm_extent_count = buf.fm_extents.len() as u32;
    // SAFETY: buf is a valid, writable struct fiemap followed by
    // fm_extent_count extents, as FS_IOC_FIEMAP requires.
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP as libc::Ioctl, &mut buf as *mut Fiemap) };
    check(ret as libc::c_long, "ioctl(FS_IOC_FIEMAP)", &what.display().to_string())?;
    let n = (buf.fm_mapped_extents as usize).min(buf.fm_extents.len());
    Ok(buf.fm_extents[..n].iter().map(|e| Extent { physical: e.fe_physical, length: e.fe_length }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiemap_request_is_the_kernels() {
        // linux/fs.h as the C compiler expands it.
        assert_eq!(FS_IOC_FIEMAP, 0xC020_660B);
    }

    #[test]
    fn a_nul_in_an_xattr_name_names_the_file_and_the_name() {
        let file = File::open("/dev/null").unwrap();
        let e = fsetxattr(&file, "user.a\0b", b"", Path::new("/mnt/f")).unwrap_err();
        assert_eq!(e.to_string(), r#"fsetxattr /mnt/f ("user.a\0b"): the xattr name contains a NUL byte"#);
    }

    #[test]
    fn a_nul_in_mount_options_names_the_mount() {
        let e = mount_btrfs(Path::new("/dev/loop9"), Path::new("/mnt"), 0, "space_cache=v1\0x").unwrap_err();
        assert_eq!(e.to_string(), "mount /dev/loop9 on /mnt (space_cache=v1\0x): the options contain a NUL byte");
    }
}
