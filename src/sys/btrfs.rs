//! btrfs ioctls (include/uapi/linux/btrfs.h). The request numbers are computed
//! here rather than taken from libc, which does not carry them.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::check;

const BTRFS_IOCTL_MAGIC: u64 = 0x94;

pub const fn io(ty: u64, nr: u64) -> u64 {
    (ty << 8) | nr
}
pub const fn ior(ty: u64, nr: u64, size: u64) -> u64 {
    (2 << 30) | (size << 16) | (ty << 8) | nr
}
pub const fn iow(ty: u64, nr: u64, size: u64) -> u64 {
    (1 << 30) | (size << 16) | (ty << 8) | nr
}
pub const fn iowr(ty: u64, nr: u64, size: u64) -> u64 {
    (3 << 30) | (size << 16) | (ty << 8) | nr
}

const IOC_SYNC: u64 = io(BTRFS_IOCTL_MAGIC, 8);
const IOC_TREE_SEARCH: u64 = iowr(BTRFS_IOCTL_MAGIC, 17, 4096);
const IOC_FS_INFO: u64 = ior(BTRFS_IOCTL_MAGIC, 31, 1024);
const IOC_BALANCE_V2: u64 = iowr(BTRFS_IOCTL_MAGIC, 32, 1024);
const IOC_BALANCE_CTL: u64 = iow(BTRFS_IOCTL_MAGIC, 33, 4);

/// _IOC_SIZE: the argument size a request number encodes.
const fn ioc_size(request: u64) -> usize {
    ((request >> 16) & 0x3fff) as usize
}

/// An ioctl whose argument is a buffer of exactly the size `request`
/// encodes (checked here, so the kernel's copy_from_user/copy_to_user stays
/// inside it). No public helper takes a raw pointer.
fn ioctl_buf(file: &File, request: u64, buf: &mut [u8], name: &'static str, what: &Path) -> io::Result<libc::c_long> {
    if buf.len() != ioc_size(request) {
        // Our bug, not the kernel's answer: no errno to report.
        return Err(io::Error::other(format!(
            "{name} {}: a buffer of {} bytes for a request ({request:#x}) that encodes {}; not called",
            what.display(),
            buf.len(),
            ioc_size(request)
        )));
    }
    // SAFETY: `buf` is writable, outlives the call and has exactly the size
    // `request` encodes; the kernel keeps no reference after returning.
    // The request type differs by libc (musl c_int, glibc c_ulong).
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), request as libc::Ioctl, buf.as_mut_ptr()) };
    check(ret as libc::c_long, name, &what.display().to_string())
}

/// An ioctl whose argument is an integer value the kernel reads as is
/// (never dereferenced): BTRFS_IOC_SYNC (0), BTRFS_IOC_BALANCE_CTL (the
/// command).
fn ioctl_value(file: &File, request: u64, value: libc::c_ulong, name: &'static str, what: &Path) -> io::Result<libc::c_long> {
    // SAFETY: no pointer is passed; the kernel takes `value` as a number.
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), request as libc::Ioctl, value) };
    check(ret as libc::c_long, name, &what.display().to_string())
}

/// BTRFS_IOC_SYNC: commit the running transaction and wake the cleaner kthread.
pub fn sync(mnt: &File, what: &Path) -> io::Result<()> {
    ioctl_value(mnt, IOC_SYNC, 0, "ioctl(BTRFS_IOC_SYNC)", what).map(|_| ())
}

/// The filesystem's fsid (BTRFS_IOC_FS_INFO), as the kernel names it in sysfs.
pub fn fsid(mnt: &File, what: &Path) -> io::Result<[u8; 16]> {
    let mut buf = [0u8; ioc_size(IOC_FS_INFO)];
    ioctl_buf(mnt, IOC_FS_INFO, &mut buf, "ioctl(BTRFS_IOC_FS_INFO)", what)?;
    let mut fsid = [0u8; 16];
    // struct btrfs_ioctl_fs_info_args: max_id u64, num_devices u64, fsid[16]
    fsid.copy_from_slice(&buf[16..32]);
    Ok(fsid)
}

/// One item returned by BTRFS_IOC_TREE_SEARCH.
#[derive(Debug, Clone)]
pub struct TreeItem {
    pub item_type: u32,
    pub offset: u64,
    pub data: Vec<u8>,
}

/// Key range for a tree search (inclusive on both ends, ordered by
/// objectid, type, offset).
#[derive(Debug, Clone, Copy)]
pub struct SearchKey {
    pub tree_id: u64,
    pub min_objectid: u64,
    pub max_objectid: u64,
    pub min_type: u32,
    pub max_type: u32,
    pub min_offset: u64,
    pub max_offset: u64,
}

/// BTRFS_IOC_TREE_SEARCH over the whole key range, following the cursor until
/// the kernel returns no more items.
pub fn tree_search(mnt: &File, key: SearchKey, what: &Path) -> io::Result<Vec<TreeItem>> {
    let mut items = Vec::new();
    let (mut objectid, mut item_type, mut offset) = (key.min_objectid, key.min_type, key.min_offset);
    loop {
        let mut buf = vec![0u8; ioc_size(IOC_TREE_SEARCH)];
        put_u64(&mut buf, 0, key.tree_id);
        put_u64(&mut buf, 8, objectid);
        put_u64(&mut buf, 16, key.max_objectid);
        put_u64(&mut buf, 24, offset);
        put_u64(&mut buf, 32, key.max_offset);
        put_u64(&mut buf, 40, 0);
        put_u64(&mut buf, 48, u64::MAX);
        put_u32(&mut buf, 56, item_type);
        put_u32(&mut buf, 60, key.max_type);
        put_u32(&mut buf, 64, 4096);
        ioctl_buf(mnt, IOC_TREE_SEARCH, &mut buf, "ioctl(BTRFS_IOC_TREE_SEARCH)", what)?;
        let nr = get_u32(&buf, 64) as usize;
        if nr == 0 {
            break;
        }
        // struct btrfs_ioctl_search_key is 104 bytes; headers follow it.
        let mut pos = 104;
        let mut last = (0u64, 0u32, 0u64);
        for _ in 0..nr {
            if pos + 32 > buf.len() {
                break;
            }
            let oid = get_u64(&buf, pos + 8);
            let off = get_u64(&buf, pos + 16);
            let ty = get_u32(&buf, pos + 24);
            let len = get_u32(&buf, pos + 28) as usize;
            let start = pos + 32;
            let end = (start + len).min(buf.len());
            items.push(TreeItem { item_type: ty, offset: off, data: buf[start..end].to_vec() });
            last = (oid, ty, off);
            pos = end;
        }
        // Advance the cursor to the key right after the last one seen.
        let (oid, ty, off) = last;
        if off < u64::MAX {
            (objectid, item_type, offset) = (oid, ty, off + 1);
        } else if ty < u8::MAX as u32 {
            (objectid, item_type, offset) = (oid, ty + 1, 0);
        } else if oid < u64::MAX {
            (objectid, item_type, offset) = (oid + 1, 0, 0);
        } else {
            break;
        }
        if (objectid, item_type, offset) > (key.max_objectid, key.max_type, key.max_offset) {
            break;
        }
    }
    Ok(items)
}

pub const BALANCE_DATA: u64 = 1 << 0;
pub const BALANCE_ARGS_USAGE: u64 = 1 << 1;
pub const BALANCE_CTL_CANCEL: i32 = 2;
/// enum btrfs_err_code: another exclusive operation (reclaim) is running.
pub const ERROR_DEV_EXCL_RUN_IN_PROGRESS: i64 = 8;

/// What BTRFS_IOC_BALANCE_V2 returned: `code` is the ioctl's return value,
/// which may be a *positive* `enum btrfs_err_code` (e.g. 8,
/// BTRFS_ERROR_DEV_EXCL_RUN_IN_PROGRESS, while reclaim holds the exclusive
/// operation).
#[derive(Debug, Clone, Copy)]
pub struct BalanceResult {
    pub code: i64,
    /// Block groups relocated.
    pub completed: u64,
}

/// BTRFS_IOC_BALANCE_V2 on data block groups with a usage filter (0..=pct).
pub fn balance_data_usage(mnt: &File, usage_pct: u64, what: &Path) -> io::Result<BalanceResult> {
    let mut buf = vec![0u8; ioc_size(IOC_BALANCE_V2)];
    put_u64(&mut buf, 0, BALANCE_DATA);
    // struct btrfs_balance_args data starts at 16: profiles u64, usage u64,
    // devid, pstart, pend, vstart, vend, target, flags (at +64).
    put_u64(&mut buf, 16 + 8, usage_pct);
    put_u64(&mut buf, 16 + 64, BALANCE_ARGS_USAGE);
    // A cancelled balance still reports its progress (the kernel copies the
    // args back for 0 and -ECANCELED): return it as code -ECANCELED.
    let code = match ioctl_buf(mnt, IOC_BALANCE_V2, &mut buf, "ioctl(BTRFS_IOC_BALANCE_V2)", what) {
        Ok(c) => c,
        Err(e) if super::errno_of(&e) == Some(libc::ECANCELED) => -(libc::ECANCELED as libc::c_long),
        Err(e) => return Err(e),
    };
    // struct btrfs_balance_progress stat at 16 + 3 * 136.
    let stat = 16 + 3 * 136;
    // struct btrfs_balance_progress: expected, considered, completed.
    Ok(BalanceResult { code: code as i64, completed: get_u64(&buf, stat + 16) })
}

/// BTRFS_IOC_BALANCE_CTL with `cmd` (BALANCE_CTL_CANCEL). The kernel reads the
/// command from the argument value itself, not through a pointer.
pub fn balance_ctl(mnt: &File, cmd: i32, what: &Path) -> io::Result<()> {
    ioctl_value(mnt, IOC_BALANCE_CTL, cmd as libc::c_ulong, "ioctl(BTRFS_IOC_BALANCE_CTL)", what).map(|_| ())
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}
fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}
pub fn get_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}
fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_match_the_uapi_header() {
        assert_eq!(IOC_SYNC, 0x9408);
        assert_eq!(IOC_FS_INFO, 0x8400_941f);
        assert_eq!(IOC_TREE_SEARCH, 0xd000_9411);
        assert_eq!(IOC_BALANCE_V2, 0xc400_9420);
        assert_eq!(IOC_BALANCE_CTL, 0x4004_9421);
    }

    #[test]
    fn a_buffer_of_the_wrong_size_is_refused_before_the_call() {
        let file = File::open("/dev/null").unwrap();
        let e = ioctl_buf(&file, IOC_FS_INFO, &mut [0u8; 16], "ioctl(BTRFS_IOC_FS_INFO)", Path::new("/mnt")).unwrap_err();
        assert_eq!(e.to_string(), "ioctl(BTRFS_IOC_FS_INFO) /mnt: a buffer of 16 bytes for a request (0x8400941f) that encodes 1024; not called");
        assert_eq!(super::super::errno_of(&e), None);
    }
}
