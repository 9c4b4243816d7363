//! The one step that touches the device: wipe, tree blocks, flush,
//! superblocks, flush. The primary superblock slot is zeroed first and
//! written last, so a crash in between leaves nothing mountable (what
//! progs gets from its temporary magic, `BTRFS_MAGIC_TEMPORARY`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::Image;
use crate::sys;

/// Zeroes are written in pieces of this size.
const ZERO_CHUNK: usize = 1 << 20;

/// Writes `image` to `file` (opened for writing on `path`, which only names
/// it in errors). Every error is one line with the path, offset and errno.
pub fn write(file: &File, path: &Path, image: &Image) -> io::Result<()> {
    let meta = file.metadata().map_err(sys::with("fstat", path))?;
    if meta.is_file() && meta.len() < image.size_bytes {
        // A regular file would grow silently: nothing is written outside
        // the device the caller sized.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is {} bytes, the image needs {}", path.display(), meta.len(), image.size_bytes),
        ));
    }
    let zeros = vec![0u8; ZERO_CHUNK];
    for &(start, end) in &image.zero {
        let mut at = start;
        while at < end {
            let n = ((end - at) as usize).min(ZERO_CHUNK);
            pwrite(file, path, &zeros[..n], at)?;
            at += n as u64;
        }
    }
    for (at, block) in &image.blocks {
        pwrite(file, path, block, *at)?;
    }
    file.sync_all().map_err(sys::with("fsync", path))?;
    for (at, sb) in &image.supers {
        pwrite(file, path, sb, *at)?;
    }
    file.sync_all().map_err(sys::with("fsync", path))
}

fn pwrite(file: &File, path: &Path, bytes: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(bytes, offset).map_err(|e| sys::with("pwrite", at_offset(path, offset))(e))
}

/// "/dev/loop3 at offset 67108864": the target a failed pwrite names.
fn at_offset(path: &Path, offset: u64) -> String {
    format!("{} at offset {offset}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_with_path_offset_and_errno() {
        let e = sys::with("pwrite", at_offset(Path::new("/dev/loop3"), 67108864))(io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(e.to_string(), "pwrite /dev/loop3 at offset 67108864: No space left on device (ENOSPC)");
        assert_eq!(sys::errno_of(&e), Some(libc::ENOSPC));
        // The errno text is the C library's (glibc "Input/output error",
        // musl "I/O error").
        let text = io::Error::from_raw_os_error(libc::EIO).to_string();
        let text = text.split(" (os error").next().unwrap();
        let e = sys::with("fsync", Path::new("/x"))(io::Error::from_raw_os_error(libc::EIO));
        assert_eq!(e.to_string(), format!("fsync /x: {text} (EIO)"));
    }

    #[test]
    fn a_write_past_a_full_device_names_the_offset() {
        // /dev/full: every write fails with ENOSPC.
        let Ok(file) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
            eprintln!("skip: no /dev/full");
            return;
        };
        let image = Image { size_bytes: 0, total_bytes: 0, zero: vec![(4096, 8192)], blocks: vec![], supers: vec![] };
        let e = write(&file, Path::new("/dev/full"), &image).unwrap_err();
        assert_eq!(e.to_string(), "pwrite /dev/full at offset 4096: No space left on device (ENOSPC)");
    }

    #[test]
    fn a_file_shorter_than_the_image_is_refused_untouched() {
        let dir = crate::testing::TempDir::new("mkfs-short");
        let path = dir.join("short.img");
        let file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        file.set_len(1 << 20).unwrap();
        let image = Image { size_bytes: 2 << 20, total_bytes: 2 << 20, zero: vec![(0, 4096)], blocks: vec![], supers: vec![] };
        let e = write(&file, &path, &image).unwrap_err();
        assert!(e.to_string().ends_with("is 1048576 bytes, the image needs 2097152"), "{e}");
        assert_eq!(file.metadata().unwrap().len(), 1 << 20);
    }
}
