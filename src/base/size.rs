//! Human sizes: `3G`, `512M`, `1048576`, `2.5G`.

/// Parses a size with an optional K/M/G/T suffix (powers of 1024, an
/// optional trailing `B` or `iB` is accepted).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower.strip_suffix("ib").or_else(|| lower.strip_suffix('b')).unwrap_or(&lower);
    let (num, mult) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 1u64 << 10),
        Some('m') => (&body[..body.len() - 1], 1 << 20),
        Some('g') => (&body[..body.len() - 1], 1 << 30),
        Some('t') => (&body[..body.len() - 1], 1 << 40),
        _ => (body, 1),
    };
    // Escaped: a newline or control character typed into the option must
    // not break the one-line error.
    let bad = || format!("bad size '{}' (use a number with an optional K, M, G or T suffix, e.g. 3G)", s.escape_debug());
    if num.is_empty() || num.starts_with('-') || num.starts_with('+') {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 / 2.0 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `3.0 GiB`, `208 MiB`: for people.
pub fn human(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let v = bytes as f64 / size as f64;
            return if v.fract() == 0.0 { format!("{v:.0} {unit}") } else { format!("{v:.1} {unit}") };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        assert_eq!(parse_size("3G"), Ok(3 << 30));
        assert_eq!(parse_size("3g"), Ok(3 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("900MiB"), Ok(900 << 20));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("2.5G"), Ok(5 << 29));
    }

    #[test]
    fn rejects_nonsense() {
        for s in ["", "12Q", "G", "-1G", "0", "abc", "1.2.3G", "+3G"] {
            assert!(parse_size(s).is_err(), "{s}");
        }
    }

    #[test]
    fn prints_for_people() {
        assert_eq!(human(3 << 30), "3 GiB");
        assert_eq!(human(208 << 20), "208 MiB");
        assert_eq!(human(1536 << 20), "1.5 GiB");
        assert_eq!(human(10), "10 B");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::testing::fuzz::{mutate, random_bytes, run, INPUTS};

    const CORPUS: [&str; 16] = [
        "3G", "3g", "512M", "900MiB", "4k", "1048576", "2.5G", "1T", "8EiB", " 3G ", "0.5K", "1e3", "7B", "16383P", "1.0e1g", "3 G",
    ];
    const DICTIONARY: [&[u8]; 10] = [b"k", b"M", b"G", b"T", b"iB", b"B", b".", b"e", b"E+20", b"-"];

    /// Whatever the user types after --size.
    #[test]
    fn size_parser_never_panics_and_round_trips() {
        let make = |rng: &mut fastrand::Rng| {
            let bytes = if rng.u8(..4) == 0 {
                random_bytes(rng, 16, &DICTIONARY)
            } else {
                let base = CORPUS[rng.usize(..CORPUS.len())];
                let other = CORPUS[rng.usize(..CORPUS.len())];
                mutate(rng, base.as_bytes(), other.as_bytes(), &DICTIONARY)
            };
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let mut accepted = 0;
        run("size::parse_size", 0x73697a65, make, |s: &String| match parse_size(s) {
            Ok(n) => {
                accepted += 1;
                assert!((1..=u64::MAX / 2).contains(&n), "{n}");
                // A size we accept is exactly a number of bytes: written
                // out, it parses to itself.
                assert_eq!(parse_size(&n.to_string()), Ok(n));
                let h = human(n);
                assert!(!h.is_empty() && !h.contains('\n'));
            }
            // The error is read by a person on one line.
            Err(e) => assert!(!e.chars().any(char::is_control), "{e:?}"),
        });
        assert!(accepted > INPUTS / 10 && accepted < INPUTS, "{accepted} accepted");
    }
}
