//! The initramfs: a newc ("070701") cpio archive, built in memory. The
//! kernel's `unpack_to_rootfs()` (init/initramfs.c) reads exactly this
//! format; it wants no compression (the 1-2 MiB archive unpacks in tens of
//! milliseconds) and no root to describe a device node.

/// One member of the archive; paths are relative ("init", "dev/console").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry<'a> {
    Dir { path: &'a str, mode: u32 },
    File { path: &'a str, mode: u32, data: &'a [u8] },
    CharDev { path: &'a str, mode: u32, major: u32, minor: u32 },
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

/// The archive: the entries in order, then the `TRAILER!!!` entry. Every
/// header and every file's data starts on a 4-byte boundary.
pub fn newc(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        // ino only has to be unique per archive (hard links share one).
        let ino = i as u32 + 1;
        match *e {
            Entry::Dir { path, mode } => member(&mut out, ino, S_IFDIR | mode, 2, (0, 0), path, &[]),
            Entry::File { path, mode, data } => member(&mut out, ino, S_IFREG | mode, 1, (0, 0), path, data),
            Entry::CharDev { path, mode, major, minor } => {
                member(&mut out, ino, S_IFCHR | mode, 1, (major, minor), path, &[])
            }
        }
    }
    member(&mut out, 0, 0, 1, (0, 0), "TRAILER!!!", &[]);
    out
}

fn member(out: &mut Vec<u8>, ino: u32, mode: u32, nlink: u32, rdev: (u32, u32), name: &str, data: &[u8]) {
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor
    // rdevminor namesize check: 13 fields of 8 hex digits.
    let fields = [ino, mode, 0, 0, nlink, 0, data.len() as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn sample() -> Vec<u8> {
        newc(&[
            Entry::Dir { path: "dev", mode: 0o755 },
            Entry::CharDev { path: "dev/console", mode: 0o600, major: 5, minor: 1 },
            Entry::File { path: "init", mode: 0o755, data: b"#!not really\n" },
            Entry::Dir { path: "brr", mode: 0o755 },
            Entry::File { path: "brr/argv", mode: 0o644, data: b"--json\0--seed\x007\0" },
            Entry::File { path: "brr/empty", mode: 0o644, data: b"" },
        ])
    }

    /// GNU cpio's own reading of the archive (the kernel's is exercised by
    /// every `--vm` row of the VM tier).
    fn cpio(args: &[&str], archive: &[u8]) -> String {
        let mut child = Command::new("cpio")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run cpio (package cpio)");
        child.stdin.take().unwrap().write_all(archive).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "cpio {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn cpio_lists_every_entry_in_order() {
        let listed = cpio(&["-t", "--quiet"], &sample());
        assert_eq!(listed, "dev\ndev/console\ninit\nbrr\nbrr/argv\nbrr/empty\n");
    }

    #[test]
    fn cpio_sees_types_modes_sizes_and_the_device_numbers() {
        let long = cpio(&["-tv", "--quiet"], &sample());
        let lines: Vec<Vec<&str>> = long.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0][0], "drwxr-xr-x");
        assert_eq!((lines[1][0], lines[1][4], lines[1][5]), ("crw-------", "5,", "1"));
        assert_eq!((lines[2][0], lines[2][4]), ("-rwxr-xr-x", "13"));
        assert_eq!((lines[4][0], lines[4][4]), ("-rw-r--r--", "16"));
        assert_eq!(lines[5][4], "0");
    }

    #[test]
    fn members_are_aligned_and_the_trailer_ends_it() {
        let a = sample();
        assert_eq!(a.len() % 4, 0);
        assert!(a.starts_with(b"070701"));
        let trailer = a.windows(10).rposition(|w| w == b"TRAILER!!!").unwrap();
        assert_eq!(&a[trailer - 110..trailer - 104], b"070701");
        // The file's data starts on a 4-byte boundary right after its name.
        let init = a.windows(5).position(|w| w == b"init\0").unwrap();
        let data = a.windows(13).position(|w| w == b"#!not really\n").unwrap();
        assert_eq!(data % 4, 0);
        assert!(data >= init + 5 && data < init + 5 + 4);
    }

    #[test]
    fn a_changed_byte_changes_what_cpio_lists() {
        // The test can fail: a name written one byte short is another entry.
        let mut a = sample();
        let at = a.windows(4).position(|w| w == b"init").unwrap();
        a[at] = b'x';
        assert!(cpio(&["-t", "--quiet"], &a).contains("xnit\n"));
    }
}
