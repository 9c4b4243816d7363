//! Which kernel a file is, from its first bytes: the x86 boot protocol's
//! "HdrS" at 0x202 (bzImage), the arm64 Image header's "ARM\x64" at 0x38.
//! Anything else is refused, naming the file and what it looks like.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The machine this binary runs on.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

/// How many leading bytes `detect` needs.
pub const HEAD: usize = 0x240;

/// The architecture of the kernel image whose first bytes are `head`, or why
/// it is not one (a sentence to follow "<path> ").
pub fn detect(head: &[u8]) -> Result<Arch, String> {
    if head.get(0x202..0x206) == Some(b"HdrS") {
        return Ok(Arch::X86_64);
    }
    if head.get(0x38..0x3c) == Some(b"ARM\x64") {
        return Ok(Arch::Aarch64);
    }
    Err(if head.starts_with(b"\x7fELF") {
        "is an ELF file (vmlinux?), not a bootable image: give arch/x86/boot/bzImage or arch/arm64/boot/Image".into()
    } else if head.starts_with(b"\x1f\x8b") {
        "is gzip-compressed (Image.gz?): give the uncompressed arch/arm64/boot/Image".into()
    } else if head.len() < 0x206 {
        format!("is not a kernel image ({} bytes: too short for a bzImage or arm64 Image header)", head.len())
    } else {
        "is not a kernel image (no bzImage \"HdrS\" at 0x202, no arm64 Image \"ARM\\x64\" at 0x38)".into()
    })
}

/// `detect` on a file: reads its first bytes.
pub fn detect_file(path: &Path) -> Result<Arch, String> {
    use std::io::Read;
    let mut head = Vec::with_capacity(HEAD);
    std::fs::File::open(path)
        .and_then(|f| f.take(HEAD as u64).read_to_end(&mut head))
        .map_err(|e| format!("cannot read the kernel {}: {e}", path.display()))?;
    detect(&head).map_err(|why| format!("{} {why}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm").join(name)).unwrap()
    }

    #[test]
    fn real_kernel_heads_are_told_apart() {
        assert_eq!(detect(&fixture("bzImage-6.12.117-stock.head")), Ok(Arch::X86_64));
        assert_eq!(detect(&fixture("Image-arm64-6.12.117-stock.head")), Ok(Arch::Aarch64));
    }

    #[test]
    fn other_files_are_refused_saying_what_they_look_like() {
        let mut bz = fixture("bzImage-6.12.117-stock.head");
        bz[0x203] = b'x';
        assert!(detect(&bz).unwrap_err().contains("no bzImage \"HdrS\" at 0x202"));
        assert!(detect(b"\x7fELF\x02\x01\x01").unwrap_err().contains("vmlinux"));
        assert!(detect(b"\x1f\x8b\x08\x00").unwrap_err().contains("Image.gz"));
        assert!(detect(b"#!/bin/sh\n").unwrap_err().contains("too short"));
        assert!(detect(&[0u8; 4096]).unwrap_err().starts_with("is not a kernel image"));
    }

    #[test]
    fn the_file_is_named() {
        let err = detect_file(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml").as_path()).unwrap_err();
        assert!(err.contains("Cargo.toml is not a kernel image"), "{err}");
        assert!(detect_file(Path::new("/nonexistent/bzImage")).unwrap_err().starts_with("cannot read the kernel /nonexistent/bzImage"));
    }
}
