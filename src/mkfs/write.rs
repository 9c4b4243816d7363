//! The one step that touches the device: wipe, tree blocks, flush,
//! superblocks, flush. The primary superblock slot is zeroed first and
//! written last, so a crash in between leaves nothing mountable (what
//! progs gets from its temporary magic, `BTRFS_MAGIC_TEMPORARY`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::Image;
use crate::sys::errno_name;

/// Zeroes are written in pieces of this size.
const ZERO_CHUNK: usize = 1 << 20;

/// Writes `image` to `file` (opened for writing on `path`, which only names
/// it in errors). Every error is one line with the path, offset and errno.
pub fn write(file: &File, path: &Path, image: &Image) -> io::Result<()> {
    let meta = file.metadata().map_err(|e| one_line("fstat", path, None, &e))?;
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
    file.sync_all().map_err(|e| one_line("fsync", path, None, &e))?;
    for (at, sb) in &image.supers {
        pwrite(file, path, sb, *at)?;
    }
    file.sync_all().map_err(|e| one_line("fsync", path, None, &e))
}

fn pwrite(file: &File, path: &Path, bytes: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(bytes, offset).map_err(|e| one_line("pwrite", path, Some(offset), &e))
}

/// "pwrite /dev/loop3 at offset 67108864: No space left on device (ENOSPC)".
fn one_line(call: &str, path: &Path, offset: Option<u64>, err: &io::Error) -> io::Error {
    let at = offset.map(|o| format!(" at offset {o}")).unwrap_or_default();
    let why = match err.raw_os_error() {
        Some(errno) => {
            let text = io::Error::from_raw_os_error(errno).to_string();
            let text = text.split(" (os error").next().unwrap_or("").to_string();
            format!("{text} ({})", errno_name(errno))
        }
        // write_all_at's short write (WriteZero) carries no errno.
        None => err.to_string(),
    };
    io::Error::new(err.kind(), format!("{call} {}{at}: {why}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_with_path_offset_and_errno() {
        let e = one_line("pwrite", Path::new("/dev/loop3"), Some(67108864), &io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(e.to_string(), "pwrite /dev/loop3 at offset 67108864: No space left on device (ENOSPC)");
        // The errno text is the C library's (glibc "Input/output error",
        // musl "I/O error").
        let text = io::Error::from_raw_os_error(libc::EIO).to_string();
        let text = text.split(" (os error").next().unwrap();
        let e = one_line("fsync", Path::new("/x"), None, &io::Error::from_raw_os_error(libc::EIO));
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
}
