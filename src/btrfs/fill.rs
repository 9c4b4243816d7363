//! Filling the data space and fragmenting it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::FillMode;
use crate::progress::Progress;
use crate::sys;
use crate::sys::process::pending_signal;

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
    pub interrupted: Option<i32>,
}

fn is_enospc(e: &io::Error) -> bool {
    matches!(sys::errno_of(e), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Writes real data with large write(2) calls; returns bytes written before
/// ENOSPC (then `Err` carries the ENOSPC).
fn write_file(f: &mut File, len: u64, buf: &mut [u8], rng: &mut fastrand::Rng) -> io::Result<u64> {
    let mut done = 0u64;
    while done < len {
        // Change the head of each chunk so no two chunks are identical.
        let head = rng.u64(..).to_ne_bytes();
        buf[..8].copy_from_slice(&head);
        let n = ((len - done) as usize).min(buf.len());
        match f.write(&buf[..n]) {
            Ok(0) => return Err(io::Error::from_raw_os_error(libc::ENOSPC)),
            Ok(w) => done += w as u64,
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
/// the filesystem ran out of space.
pub fn make_file(path: &Path, len: u64, mode: FillMode, buf: &mut [u8], rng: &mut fastrand::Rng) -> io::Result<(u64, bool)> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(sys::with("create", path))?;
    let result = match mode {
        FillMode::Fallocate => sys::fs::fallocate(&f, 0, len, path).map(|_| len),
        FillMode::Write => write_file(&mut f, len, buf, rng),
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

pub fn random_buffer(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut buf = vec![0u8; WRITE_CHUNK];
    for chunk in buf.chunks_mut(8) {
        chunk.copy_from_slice(&rng.u64(..).to_ne_bytes()[..chunk.len()]);
    }
    buf
}

/// Fills `dir` with `FILE_BYTES` files until the data space is `pct` % full
/// (or ENOSPC, which ends the fill normally).
pub fn fill(fs_dir: &File, dir: &Path, mode: FillMode, pct: u32, rng: &mut fastrand::Rng, progress: &mut Progress) -> io::Result<Filled> {
    let mut out = Filled::default();
    let mut buf = if mode == FillMode::Write { random_buffer(rng) } else { Vec::new() };
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
                crate::size::human(out.bytes),
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
