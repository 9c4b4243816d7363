//! Reading the verdict JSON without a JSON crate: one scanner.

/// Byte length of the JSON value at the start of `s` (string, number,
/// literal, array or object).
fn value_len(s: &str) -> usize {
    let b = s.as_bytes();
    let (mut depth, mut in_str, mut i) = (0i32, false, 0);
    while i < b.len() {
        let c = b[i];
        if in_str {
            match c {
                b'\\' => i += 1,
                b'"' => {
                    in_str = false;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return i,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                b',' if depth == 0 => return i,
                _ => {}
            }
        }
        i += 1;
    }
    b.len()
}

/// The raw JSON text of a top-level key's value (number, string, array,
/// object, null): enough for these tests.
pub fn json_field(json: &str, key: &str) -> Option<String> {
    let mut rest = json.trim_start().strip_prefix('{')?;
    loop {
        rest = rest.trim_start().strip_prefix(',').unwrap_or(rest).trim_start();
        if !rest.starts_with('"') {
            return None;
        }
        let klen = value_len(rest);
        let k = &rest[1..klen - 1];
        rest = rest[klen..].trim_start().strip_prefix(':')?.trim_start();
        let vlen = value_len(rest);
        if k == key {
            return Some(rest[..vlen].trim().to_string());
        }
        rest = &rest[vlen..];
    }
}

#[test]
fn finds_top_level_keys_only() {
    let j = r#"{"a": 1, "b": {"a": 2, "c": [1, {"x": "}"}]}, "s": "q\"uote, }", "n": null, "e": []}"#;
    assert_eq!(json_field(j, "a").as_deref(), Some("1"));
    assert_eq!(json_field(j, "b").as_deref(), Some(r#"{"a": 2, "c": [1, {"x": "}"}]}"#));
    assert_eq!(json_field(j, "s").as_deref(), Some(r#""q\"uote, }""#));
    assert_eq!(json_field(j, "n").as_deref(), Some("null"));
    assert_eq!(json_field(j, "e").as_deref(), Some("[]"));
    assert_eq!(json_field(j, "c"), None);
    assert_eq!(json_field(j, "x"), None);
}
