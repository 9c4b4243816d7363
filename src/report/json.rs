//! A tiny JSON writer: enough for one flat-ish object, no serde.

pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn number(v: f64) -> String {
    if v.is_finite() {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s.is_empty() || s == "-" { "0".into() } else { s.to_string() }
    } else {
        "null".into()
    }
}

pub fn opt_u64(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| "null".into())
}

/// Builds `{"k": v, ...}` from already-encoded values, in insertion order.
#[derive(Default)]
pub struct Object {
    fields: Vec<(String, String)>,
}

impl Object {
    pub fn new() -> Object {
        Object::default()
    }
    pub fn raw(&mut self, key: &str, encoded: String) -> &mut Self {
        self.fields.push((key.to_string(), encoded));
        self
    }
    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.raw(key, string(v))
    }
    pub fn int(&mut self, key: &str, v: impl Into<i128>) -> &mut Self {
        self.raw(key, v.into().to_string())
    }
    pub fn num(&mut self, key: &str, v: f64) -> &mut Self {
        self.raw(key, number(v))
    }
    pub fn finish(&self) -> String {
        let body: Vec<String> = self.fields.iter().map(|(k, v)| format!("{}: {}", string(k), v)).collect();
        format!("{{{}}}", body.join(", "))
    }
}

pub fn array(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_strings() {
        assert_eq!(string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn numbers_are_plain() {
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(f64::NAN), "null");
    }

    #[test]
    fn objects_keep_order() {
        let mut o = Object::new();
        o.str("verdict", "REPRODUCED").int("exit_code", 1).raw("list", array(vec!["1".into(), "2".into()]));
        assert_eq!(o.finish(), "{\"verdict\": \"REPRODUCED\", \"exit_code\": 1, \"list\": [1, 2]}");
    }
}
