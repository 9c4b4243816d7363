//! A loop device we attach over an image file, detached again when dropped.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::sys;

/// A loop device we attached. Dropping it detaches it.
#[derive(Debug)]
pub struct LoopDevice {
    pub path: PathBuf,
    file: Option<File>,
}

impl LoopDevice {
    /// Attaches `image` to a free loop device, with autoclear.
    pub fn attach(image: &Path) -> io::Result<LoopDevice> {
        let backing = OpenOptions::new()
            .read(true)
            .write(true)
            .open(image)
            .map_err(sys::with("open", image))?;
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")
            .map_err(|e| sys::hinted(sys::with("open", "/dev/loop-control")(e), "is the loop module loaded?"))?;
        let canonical = std::fs::canonicalize(image).unwrap_or_else(|_| image.to_path_buf());
        // Another process may take the device LOOP_CTL_GET_FREE returned
        // before we bind it (EBUSY): ask again.
        let mut last_err = None;
        for _ in 0..20 {
            let n = sys::loopdev::get_free(&control)?;
            let path = PathBuf::from(format!("/dev/loop{n}"));
            let file = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(f) => f,
                Err(e) => {
                    last_err = Some(sys::with("open", &path)(e));
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
            };
            match sys::loopdev::attach(&file, &path, &backing, &canonical) {
                Ok(()) => return Ok(LoopDevice { path, file: Some(file) }),
                Err(e) if sys::errno_of(&e) == Some(libc::EBUSY) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no free loop device")))
    }

    /// Detaches now (also done on drop). EBUSY right after an unmount is
    /// retried for a while.
    pub fn detach(&mut self) -> io::Result<()> {
        let Some(file) = self.file.take() else { return Ok(()) };
        let mut result = Ok(());
        for _ in 0..50 {
            result = sys::loopdev::detach(&file, &self.path);
            match &result {
                Err(e) if sys::errno_of(e) == Some(libc::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(100)),
                _ => break,
            }
        }
        result
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Err(e) = self.detach() {
            eprintln!("btrfs-reclaim-repro: could not detach {}: {e} (run: losetup -d {})", self.path.display(), self.path.display());
        }
    }
}
