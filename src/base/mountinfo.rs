//! /proc/self/mountinfo parsing (proc(5)).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub major: u32,
    pub minor: u32,
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

/// Undoes the octal escapes (`\040` for a space) the kernel uses in paths
/// (mountinfo, /proc/swaps).
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // \ooo is one byte: at most \377 (a larger one, never printed by
        // the kernel, would overflow the u8).
        if b[i] == b'\\' && i + 3 < b.len() && (b'0'..=b'3').contains(&b[i + 1]) && b[i + 2..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-")?;
    if sep < 6 || fields.len() < sep + 3 {
        return None;
    }
    let (major, minor) = fields[2].split_once(':')?;
    Some(Mount {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        mount_point: unescape(fields[4]),
        fstype: fields[sep + 1].to_string(),
        source: unescape(fields[sep + 2]),
        super_options: fields.get(sep + 3).copied().unwrap_or("").to_string(),
    })
}

/// Which free space cache a btrfs mount really uses: "v1", "v2" or "none".
pub fn space_cache(m: &Mount) -> &'static str {
    let mut cache = "none";
    for opt in m.super_options.split(',') {
        match opt {
            "space_cache" | "space_cache=v1" => cache = "v1",
            "space_cache=v2" => cache = "v2",
            "nospace_cache" => cache = "none",
            _ => {}
        }
    }
    cache
}

/// The mount at exactly `mount_point`, the last one if stacked.
pub fn find_by_mount_point<'a>(mounts: &'a [Mount], mount_point: &str) -> Option<&'a Mount> {
    mounts.iter().rev().find(|m| m.mount_point == mount_point)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
36 22 0:32 / /tmp/my\\040mnt rw,noatime shared:30 - btrfs /dev/loop0 rw,ssd,discard=async,space_cache,subvolid=5,subvol=/
37 22 0:33 / /mnt/v2 rw,noatime shared:31 - btrfs /dev/loop1 rw,ssd,discard=async,space_cache=v2,subvolid=5,subvol=/
38 22 0:34 / /mnt/none rw - btrfs /dev/loop2 rw,nospace_cache,subvolid=5,subvol=/
";

    #[test]
    fn parses_fields_and_escapes() {
        let m = parse(FIXTURE);
        assert_eq!(m.len(), 4);
        assert_eq!((m[0].major, m[0].minor), (254, 0));
        assert_eq!(m[1].mount_point, "/tmp/my mnt");
        assert_eq!(m[1].fstype, "btrfs");
        assert_eq!(m[1].source, "/dev/loop0");
    }

    #[test]
    fn tells_the_space_cache_version() {
        let m = parse(FIXTURE);
        assert_eq!(space_cache(&m[1]), "v1");
        assert_eq!(space_cache(&m[2]), "v2");
        assert_eq!(space_cache(&m[3]), "none");
        assert_eq!(find_by_mount_point(&m, "/mnt/v2").unwrap().source, "/dev/loop1");
    }

    #[test]
    fn ignores_garbage() {
        assert!(parse("garbage\n1 2 3\n").is_empty());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::testing::fuzz::{run, text, INPUTS};

    /// Lines as the kernel prints them (proc(5)'s example, this project's
    /// loop mounts, a test machine's).
    const CORPUS: &str = "\
36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334432k,nr_inodes=3083608,mode=755
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
36 22 0:32 / /tmp/my\\040mnt rw,noatime shared:30 - btrfs /dev/loop0 rw,ssd,discard=async,space_cache,subvolid=5,subvol=/
37 22 0:33 / /mnt/v2 rw,noatime shared:31 - btrfs /dev/loop1 rw,ssd,discard=async,space_cache=v2,subvolid=5,subvol=/
38 22 0:34 / /mnt/none rw - btrfs /dev/loop2 rw,nospace_cache,subvolid=5,subvol=/
40 22 0:40 / /data rw shared:2 master:7 propagate_from:3 unbindable - btrfs /dev/disk/by-label/data rw
41 22 0:41 /sub\\011dir /mnt/tab\\134slash rw - fuse.sshfs user@host:/export rw,user_id=0
";

    const DICTIONARY: [&[u8]; 8] = [b" - ", b" - btrfs ", b"\\040", b"\\134", b"\\0", b"space_cache=v2", b"nospace_cache", b"shared:1 "];

    /// What the kernel does to a path in mountinfo (mangle() in
    /// fs/proc_namespace.c): space, tab, newline and backslash as \ooo.
    fn escape(s: &str) -> String {
        let mut out = String::with_capacity(s.len() * 2);
        for c in s.chars() {
            match c {
                ' ' | '\t' | '\n' | '\\' => {
                    let b = c as u8;
                    out.extend(['\\', char::from(b'0' + (b >> 6)), char::from(b'0' + (b >> 3 & 7)), char::from(b'0' + (b & 7))]);
                }
                c => out.push(c),
            }
        }
        out
    }

    #[test]
    fn parser_never_panics() {
        let make = |rng: &mut fastrand::Rng| text(rng, &[CORPUS], 4, &DICTIONARY);
        let mut mounts = 0;
        run("mountinfo::parse", 0x6d6f756e74, make, |input: &String| {
            let found = parse(input);
            assert!(found.len() <= input.lines().count());
            for m in &found {
                assert!(!m.fstype.contains(' ') && !m.fstype.contains('\n'));
                assert!(["v1", "v2", "none"].contains(&space_cache(m)));
                assert_eq!(find_by_mount_point(&found, &m.mount_point).map(|f| &f.mount_point), Some(&m.mount_point));
            }
            mounts += found.len();
            // Any ASCII path survives the kernel's escaping and our
            // unescaping (other bytes come back lossily replaced).
            let ascii: String = input.chars().filter(char::is_ascii).collect();
            assert_eq!(unescape(&escape(&ascii)), ascii);
            if !input.contains('\\') {
                assert_eq!(unescape(input), *input);
            }
        });
        assert!(mounts > INPUTS / 2, "most mutated lines still parse: {mounts}");
    }
}
