//! Filling the data space and fragmenting it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::base::progress::Progress;
use crate::sys;
use crate::sys::process::pending_signal;

/// How the fill makes a file: fallocate (extents without data, fast) or
/// write (real data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FillMode {
    #[default]
    Fallocate,
    Write,
}

impl FillMode {
    pub fn name(self) -> &'static str {
        match self {
            FillMode::Fallocate => "fallocate",
            FillMode::Write => "write",
        }
    }
}

/// "A few tens of MiB", like the bug report's dd files: each file lands in
/// one block group, so deleting every other one leaves each group half used.
pub const FILE_BYTES: u64 = 32 << 20;
const WRITE_CHUNK: usize = 4 << 20;

#[derive(Debug, Default)]
pub struct Filled {
    pub files: Vec<PathBuf>,
    pub bytes: u64,
    /// written / (written + f_bavail), after syncfs.
    pub percent: f64,
    pub hit_enospc: bool,
    pub interrupted: Option<sys::process::Signal>,
}

fn is_enospc(e: &io::Error) -> bool {
    matches!(sys::errno_of(e), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// O_DIRECT needs the buffer, the file offset and the length aligned to
/// the sector size (btrfs_direct_write checks all three against the 4 KiB
/// sectors our mkfs writes).
const DIRECT_ALIGN: usize = 4096;

/// The write buffer: WRITE_CHUNK random bytes starting on a DIRECT_ALIGN
/// boundary, so the same data can go through O_DIRECT.
pub struct WriteBuf {
    bytes: Vec<u8>,
    start: usize,
}

impl WriteBuf {
    pub fn new(rng: &mut fastrand::Rng) -> WriteBuf {
        let mut bytes = vec![0u8; WRITE_CHUNK + DIRECT_ALIGN];
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&rng.u64(..).to_ne_bytes()[..chunk.len()]);
        }
        let start = bytes.as_ptr().align_offset(DIRECT_ALIGN);
        WriteBuf { bytes, start }
    }

    /// No buffer: for fallocate fills.
    pub fn empty() -> WriteBuf {
        WriteBuf { bytes: Vec::new(), start: 0 }
    }

    /// Whether O_DIRECT can write from it.
    fn aligned(&self) -> bool {
        self.start < DIRECT_ALIGN && self.bytes.len() >= self.start + WRITE_CHUNK
    }

    fn chunk(&mut self) -> &mut [u8] {
        let end = (self.start + WRITE_CHUNK).min(self.bytes.len());
        let start = self.start.min(end);
        &mut self.bytes[start..end]
    }
}

/// Writes real data with large write(2) calls; returns bytes written before
/// ENOSPC (then `Err` carries the ENOSPC). With O_DIRECT a short write can
/// only be the end of the space: it is reported as ENOSPC, since the next
/// write would start unaligned.
fn write_file(f: &mut File, len: u64, buf: &mut WriteBuf, direct: bool, rng: &mut fastrand::Rng) -> io::Result<u64> {
    let mut done = 0u64;
    let chunk = buf.chunk();
    if chunk.len() < 8 {
        return Err(io::Error::other("no write buffer"));
    }
    while done < len {
        // Change the head of each chunk so no two chunks are identical.
        let head = rng.u64(..).to_ne_bytes();
        chunk[..8].copy_from_slice(&head);
        let n = ((len - done) as usize).min(chunk.len());
        match f.write(&chunk[..n]) {
            Ok(0) => return Err(io::Error::from_raw_os_error(libc::ENOSPC)),
            Ok(w) => {
                done += w as u64;
                if direct && w < n {
                    return Err(io::Error::from_raw_os_error(libc::ENOSPC));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if pending_signal().is_some() {
                    return Ok(done);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Creates one file of `len` bytes. Returns the bytes it holds and whether
/// the filesystem ran out of space. Data goes through O_DIRECT: a buffered
/// write copies every byte into fresh page cache pages before writeback
/// sends them, where O_DIRECT hands the aligned buffer to the bio as
/// `dd oflag=direct` does; `len` is rounded up to 4 KiB for it.
pub fn make_file(path: &Path, len: u64, mode: FillMode, buf: &mut WriteBuf, rng: &mut fastrand::Rng) -> io::Result<(u64, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    let direct = mode == FillMode::Write && buf.aligned();
    let len = if direct { len.next_multiple_of(DIRECT_ALIGN as u64) } else { len };
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(if direct { libc::O_DIRECT } else { 0 })
        .open(path)
        .map_err(sys::with("create", path))?;
    let result = match mode {
        FillMode::Fallocate => sys::fs::fallocate(&f, 0, len, path).map(|_| len),
        FillMode::Write => write_file(&mut f, len, buf, direct, rng),
    };
    match result {
        Ok(n) => Ok((n, false)),
        Err(e) if is_enospc(&e) => {
            let held = f.metadata().map(|m| m.len()).unwrap_or(0);
            Ok((held, true))
        }
        Err(e) => Err(sys::with(if mode == FillMode::Write { "write" } else { "fallocate" }, path)(e)),
    }
}

/// Fills `dir` with `FILE_BYTES` files until the data space is `pct` % full
/// (or ENOSPC, which ends the fill normally).
pub fn fill(fs_dir: &File, dir: &Path, mode: FillMode, pct: u32, rng: &mut fastrand::Rng, progress: &mut Progress) -> io::Result<Filled> {
    let mut out = Filled::default();
    let mut buf = if mode == FillMode::Write { WriteBuf::new(rng) } else { WriteBuf::empty() };
    let started = Instant::now();
    loop {
        // Measure after syncfs: statfs counts delalloc only once written.
        sys::fs::syncfs(fs_dir, dir)?;
        let avail = sys::fs::statfs(dir)?.avail_bytes;
        out.percent = percent(out.bytes, avail);
        if out.hit_enospc || out.percent >= pct as f64 || out.interrupted.is_some() {
            break;
        }
        // Fill towards the target estimated from what is free now, then
        // measure again (metadata growth eats a little of the estimate).
        let target = (out.bytes + avail) as f64 * pct as f64 / 100.0;
        while (out.bytes as f64) < target {
            if let Some(sig) = pending_signal() {
                out.interrupted = Some(sig);
                break;
            }
            let path = dir.join(format!("f{:05}", out.files.len()));
            let len = FILE_BYTES.min((target - out.bytes as f64).max(1.0 * (1 << 20) as f64) as u64);
            let (held, enospc) = make_file(&path, len, mode, &mut buf, rng)?;
            out.files.push(path);
            out.bytes += held;
            progress.update(&format!(
                "fill: {} written ({:.0} MiB/s)",
                crate::base::size::human(out.bytes),
                out.bytes as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64().max(1e-3)
            ));
            if enospc {
                out.hit_enospc = true;
                break;
            }
        }
    }
    Ok(out)
}

/// Fills metadata until ENOSPC: with data filled first, metadata cannot grow
/// a new chunk, so this leaves it full. ENOSPC is the goal, never an error.
/// Large xattrs first, then small inline files for what is left; returns
/// (xattrs, files).
pub fn starve_metadata(dir: &Path, progress: &mut Progress) -> io::Result<(u64, u64)> {
    std::fs::create_dir_all(dir).map_err(sys::with("mkdir", dir))?;
    let xattrs = starve_with_xattrs(dir, progress)?;
    let files = starve_with_files(dir, progress)?;
    Ok((xattrs, files))
}

/// One xattr item of XATTR_BYTES fills most of a 4 KiB leaf in one
/// syscall, and reserves far less than a create (btrfs_setxattr_trans
/// reserves 2 items, btrfs_create_common 5 plus the inline extent): the
/// 8 MiB metadata chunk is full in ~0.2 s where small files took ~4 s, most
/// of it flushing (btrfs_reserve_metadata_bytes) near the end.
fn starve_with_xattrs(dir: &Path, progress: &mut Progress) -> io::Result<u64> {
    // Under BTRFS_MAX_XATTR_SIZE for 4 KiB nodes (3940 bytes with the name);
    // a bigger value is refused with ENOSPC too (btrfs_setxattr), which the
    // first call would show: the small files then do all the work.
    const XATTR_BYTES: usize = 3800;
    let path = dir.join("xattrs");
    let file = OpenOptions::new().write(true).create(true).truncate(true).open(&path).map_err(sys::with("create", &path))?;
    let value = vec![b'x'; XATTR_BYTES];
    let mut n = 0u64;
    for i in 0u64.. {
        if pending_signal().is_some() {
            break;
        }
        match sys::fs::fsetxattr(&file, &format!("user.m{i:07}"), &value, &path) {
            Ok(()) => n += 1,
            Err(e) if is_enospc(&e) => break,
            // Two names with the same hash share one item, which cannot hold
            // two values this big (btrfs_insert_xattr_item): skip the name.
            Err(e) if sys::errno_of(&e) == Some(libc::EOVERFLOW) => continue,
            Err(e) => return Err(e),
        }
        if n.is_multiple_of(500) {
            progress.update(&format!("starve metadata: {n} xattrs"));
        }
        if i >= 10_000_000 {
            return Err(io::Error::other("metadata never filled up after 10 million xattrs"));
        }
    }
    Ok(n)
}

/// Small files stored inline in metadata (max_inline=2048): they fill what
/// the big xattrs could not.
fn starve_with_files(dir: &Path, progress: &mut Progress) -> io::Result<u64> {
    let payload = vec![b'm'; 1500];
    let mut n = 0u64;
    loop {
        if pending_signal().is_some() {
            return Ok(n);
        }
        let path = dir.join(format!("m{n:07}"));
        let result = OpenOptions::new().write(true).create_new(true).open(&path).and_then(|mut f| f.write_all(&payload));
        match result {
            Ok(()) => n += 1,
            Err(e) if is_enospc(&e) => return Ok(n),
            Err(e) => return Err(sys::with("create", &path)(e)),
        }
        if n.is_multiple_of(1000) {
            progress.update(&format!("starve metadata: {n} small files"));
        }
        if n >= 10_000_000 {
            return Err(io::Error::other("metadata never filled up after 10 million small files"));
        }
    }
}

pub fn percent(written: u64, avail: u64) -> f64 {
    if written + avail == 0 {
        return 0.0;
    }
    written as f64 * 100.0 / (written + avail) as f64
}

/// Deletes every `nth` file (every other one for 2: the odd ones), leaving
/// each block group partly used: good reclaim candidates.
pub fn fragment(files: &[PathBuf], nth: usize) -> io::Result<usize> {
    let mut n = 0;
    for path in files.iter().skip(nth - 1).step_by(nth) {
        std::fs::remove_file(path).map_err(sys::with("unlink", path))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_buffer_is_aligned_for_o_direct() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut buf = WriteBuf::new(&mut rng);
        assert!(buf.aligned());
        let chunk = buf.chunk();
        assert_eq!(chunk.len(), WRITE_CHUNK);
        assert_eq!(chunk.as_ptr() as usize % DIRECT_ALIGN, 0);
        assert!(!WriteBuf::empty().aligned(), "fallocate's empty buffer must never be used for O_DIRECT");
    }

    #[test]
    fn write_mode_writes_real_data_rounded_to_the_sector() {
        let dir = std::env::temp_dir().join(format!("brr-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let mut rng = fastrand::Rng::with_seed(7);
        let mut buf = WriteBuf::new(&mut rng);
        let len = (WRITE_CHUNK as u64) + 100;
        let (held, enospc) = make_file(&path, len, FillMode::Write, &mut buf, &mut rng).unwrap();
        assert!(!enospc);
        assert_eq!(held, len.next_multiple_of(DIRECT_ALIGN as u64));
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len() as u64, held);
        // Random bytes, not a hole: the tail chunk starts with a fresh head.
        assert!(data[WRITE_CHUNK..WRITE_CHUNK + 8].iter().any(|b| *b != 0));
        assert_ne!(data[..8], data[WRITE_CHUNK..WRITE_CHUNK + 8]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn percent_is_written_over_written_plus_available() {
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(90, 10), 90.0);
        assert_eq!(percent(0, 100), 0.0);
    }

    #[test]
    fn fragment_deletes_every_other_file() {
        let dir = std::env::temp_dir().join(format!("brr-frag-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files: Vec<PathBuf> = (0..5).map(|i| dir.join(format!("f{i}"))).collect();
        for f in &files {
            std::fs::write(f, b"x").unwrap();
        }
        assert_eq!(fragment(&files, 2).unwrap(), 2);
        let left: Vec<bool> = files.iter().map(|f| f.exists()).collect();
        assert_eq!(left, vec![true, false, true, false, true]);
        for f in &files {
            std::fs::write(f, b"x").unwrap();
        }
        assert_eq!(fragment(&files, 3).unwrap(), 1);
        let left: Vec<bool> = files.iter().map(|f| f.exists()).collect();
        assert_eq!(left, vec![true, true, false, true, true]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
