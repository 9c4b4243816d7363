//! Never destroy what the user did not name: `<dev>` must not be in use and
//! must not hold anything but a filesystem we made ourselves (unless
//! --force). Detection is pure over text, bytes and a sysfs tree (a fixture
//! directory in the tests); `check_device` gathers them from /proc, /sys and
//! the device's first and last sectors.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::signature::{detect_signature, detect_tail_signature, PROBE_BYTES, TAIL_BYTES};
use super::usage::{block_device_uses, image_uses, Usage, Use};

/// Devices this small get data block groups under 100 MiB, which never get a
/// v1 cache inode (cache_save_setup), so the injection site is unreachable.
pub const MIN_DEVICE_BYTES: u64 = 960 << 20;

fn refusal(dev: &Path, u: &Use) -> String {
    format!("refusing {}: {} ({})", dev.display(), u.what, u.remedy)
}

/// Reads up to `len` bytes at `offset`: fewer only at the end of the file.
fn read_at(f: &mut File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(len);
    // read_to_end retries EINTR and stops at EOF.
    f.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Refuses a device in use or holding a foreign signature: one line, what,
/// why and what to do. `bytes` is its size. Reads only.
pub fn check_device(dev: &Path, bytes: u64, force: bool) -> Result<(), String> {
    let sys = Path::new("/sys");
    let canonical = std::fs::canonicalize(dev).unwrap_or_else(|_| dev.to_path_buf());
    let usage = Usage::read(sys);
    let named = vec![dev.display().to_string(), canonical.display().to_string()];

    let is_block = if let Some((ma, mi)) = crate::device::rdev(&canonical) {
        if let Some(u) = block_device_uses(sys, &usage, ma, mi, &named).first() {
            return Err(refusal(dev, u));
        }
        // The kernel's own answer: a mounted filesystem, swap, dm/md or a
        // running mkfs claims the device, and O_EXCL then fails with EBUSY
        // (for a whole disk, also when one of its partitions is claimed).
        match OpenOptions::new().read(true).custom_flags(libc::O_EXCL).open(&canonical) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(format!(
                    "refusing {}: the kernel reports it busy (open with O_EXCL: EBUSY): something holds it (a mount, swap, dm/md, another mkfs) (stop that user first, or use another device)",
                    dev.display()
                ));
            }
            _ => {}
        }
        true
    } else {
        if let Some(u) = image_uses(sys, &usage, &canonical.to_string_lossy()).first() {
            return Err(refusal(dev, u));
        }
        false
    };

    let cannot_read = |e: std::io::Error| format!("refusing {}: cannot read it to look for a filesystem: {e} (check the path and permissions)", dev.display());
    let mut f = File::open(&canonical).map_err(cannot_read)?;
    let head = read_at(&mut f, 0, PROBE_BYTES).map_err(cannot_read)?;
    let mut found = detect_signature(&head);
    if found.is_none() && bytes > PROBE_BYTES as u64 {
        let len = TAIL_BYTES.min(bytes as usize);
        let tail = read_at(&mut f, bytes - len as u64, len).map_err(cannot_read)?;
        if tail.len() == len {
            found = detect_tail_signature(&tail, bytes);
        }
    }
    if let Some(sig) = found {
        if !sig.is_ours() && !force {
            // The label is the device's bytes: escaped, so a newline in it
            // cannot break the one-line refusal.
            let label = sig.label.as_deref().filter(|l| !l.is_empty()).map(|l| format!(" labelled '{}'", l.escape_debug())).unwrap_or_default();
            let what = if is_block { "device" } else { "image" };
            return Err(format!(
                "refusing {}: it holds a {}{label} signature: formatting would destroy it (wipe the {what} first, or use -f/--force)",
                dev.display(),
                sig.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_at_reads_len_bytes_and_fewer_only_at_the_end() {
        let dir = crate::testing::TempDir::new("read-at");
        let path = dir.join("ten");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut f = File::open(&path).unwrap();
        assert_eq!(read_at(&mut f, 3, 4).unwrap(), b"3456");
        assert_eq!(read_at(&mut f, 8, 4).unwrap(), b"89");
        assert_eq!(read_at(&mut f, 20, 4).unwrap(), b"");
    }
}
