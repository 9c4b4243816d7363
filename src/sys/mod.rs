//! Every raw syscall and every `unsafe` block of the program lives below this
//! module. Each wrapper is thin: it converts a -1 return into an `io::Error`
//! that names the syscall, the path (or fd) and the errno, so that a message a
//! person reads says what failed on what.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::path::Path;

pub mod btrfs;
pub mod fs;
pub mod loopdev;
pub mod process;
pub mod swap;
pub mod vm;

/// A failed syscall: which one, on what, and the errno it returned.
#[derive(Debug)]
pub struct SysError {
    pub call: &'static str,
    pub target: String,
    pub errno: i32,
    /// What a person might check, printed last: "is the loop module loaded?".
    pub hint: Option<&'static str>,
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = io::Error::from_raw_os_error(self.errno);
        // io::Error's Display appends " (os error N)"; keep only the text.
        let text = text.to_string();
        let text = text.split(" (os error").next().unwrap_or("");
        write!(f, "{} {}: {} ({})", self.call, self.target, text, errno_name(self.errno))?;
        match self.hint {
            Some(hint) => write!(f, " ({hint})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for SysError {}

/// The errno of an error made by this module (or a plain OS error).
pub fn errno_of(err: &io::Error) -> Option<i32> {
    if let Some(code) = err.raw_os_error() {
        return Some(code);
    }
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<SysError>())
        .map(|e| e.errno)
}

pub fn error(call: &'static str, target: &str, errno: i32) -> io::Error {
    let kind = io::Error::from_raw_os_error(errno).kind();
    io::Error::new(kind, SysError { call, target: target.to_string(), errno, hint: None })
}

/// `err` with `hint` appended to its message; an error made here keeps its
/// errno for `errno_of`.
pub fn hinted(err: io::Error, hint: &'static str) -> io::Error {
    match err.get_ref().and_then(|inner| inner.downcast_ref::<SysError>()) {
        Some(e) => io::Error::new(err.kind(), SysError { call: e.call, target: e.target.clone(), errno: e.errno, hint: Some(hint) }),
        None => io::Error::new(err.kind(), format!("{err} ({hint})")),
    }
}

/// The one way an error of a call made outside this module (std's file
/// calls) gets its context: `File::open(p).map_err(sys::with("open", p))`
/// gives "open /p: No such file or directory (ENOENT)", keeping the errno
/// for `errno_of`. An error that already names its call (made here) passes
/// through unchanged: nothing is wrapped twice.
pub fn with(call: &'static str, target: impl AsRef<Path>) -> impl FnOnce(io::Error) -> io::Error {
    move |e| {
        let named = e.get_ref().is_some_and(|inner| inner.is::<SysError>());
        match e.raw_os_error() {
            _ if named => e,
            Some(errno) => error(call, &target.as_ref().display().to_string(), errno),
            None => io::Error::new(e.kind(), format!("{call} {}: {e}", target.as_ref().display())),
        }
    }
}

/// Turns a C-style return value into a Result, capturing errno right away.
fn check(ret: libc::c_long, call: &'static str, target: &str) -> io::Result<libc::c_long> {
    if ret == -1 {
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        Err(error(call, target, errno))
    } else {
        Ok(ret)
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("path {} contains a NUL byte", path.display())))
}

/// Short symbolic names for the errnos a person is likely to meet here.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::ETXTBSY => "ETXTBSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EPIPE => "EPIPE",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTCONN => "ENOTCONN",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ECANCELED => "ECANCELED",
        libc::EUCLEAN => "EUCLEAN",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_names_the_call_keeps_the_errno_and_never_wraps_twice() {
        let e = with("open", "/nowhere")(io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(e.to_string(), "open /nowhere: No such file or directory (ENOENT)");
        assert_eq!(errno_of(&e), Some(libc::ENOENT));
        let again = with("fallocate", "/nowhere")(e);
        assert_eq!(again.to_string(), "open /nowhere: No such file or directory (ENOENT)");
        let plain = with("read", "/x")(io::Error::new(io::ErrorKind::InvalidData, "not a number"));
        assert_eq!(plain.to_string(), "read /x: not a number");
    }

    #[test]
    fn a_hint_comes_last_and_the_errno_stays() {
        let e = hinted(with("open", "/dev/loop-control")(io::Error::from_raw_os_error(libc::ENOENT)), "is the loop module loaded?");
        assert_eq!(e.to_string(), "open /dev/loop-control: No such file or directory (ENOENT) (is the loop module loaded?)");
        assert_eq!(errno_of(&e), Some(libc::ENOENT));
        let plain = hinted(io::Error::other("no free loop device"), "try again");
        assert_eq!(plain.to_string(), "no free loop device (try again)");
    }
}
