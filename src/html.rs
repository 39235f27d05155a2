//! Helpers for the self-contained HTML pages (highlights review, redaction review): data
//! embedded in a `<script>` element, relative URLs to the media they play, base64 images.

use std::path::Path;

/// A URL for `target` relative to `dir` (percent-encoding what a URL cannot hold).
pub fn relative_url(dir: &Path, target: &Path) -> String {
    // An empty parent ("out.mp4".parent()) is the current folder.
    let abs = |p: &Path| {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
    };
    let (d, t) = (abs(dir), abs(target));
    let dc: Vec<_> = d.components().collect();
    let tc: Vec<_> = t.components().collect();
    let common = dc.iter().zip(&tc).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = std::iter::repeat("..".to_string())
        .take(dc.len() - common)
        .collect();
    parts.extend(
        tc[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts
        .iter()
        .map(|p| {
            p.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// JSON safe to put inside a `<script>` element.
pub fn script_json(v: &serde_json::Value) -> String {
    serde_json::to_string(v)
        .expect("page data serialises")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Standard base64 (RFC 4648).
pub fn base64(data: &[u8]) -> String {
    base64_lite::encode(data)
}

/// Standard base64 (RFC 4648) for thumbnails: small enough not to need a crate.
mod base64_lite {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub fn encode(data: &[u8]) -> String {
        let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
        for c in data.chunks(3) {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..4 {
                if i <= c.len() {
                    s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let v = serde_json::json!({"source": "</script><img src=x onerror=alert(1)>&"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn relative_urls_escape_and_climb() {
        assert_eq!(
            relative_url(Path::new("/a/b"), Path::new("/a/b/c d.mp4")),
            "c%20d.mp4"
        );
        assert_eq!(
            relative_url(Path::new("/a/b"), Path::new("/a/x/<y>.mp4")),
            "../x/%3Cy%3E.mp4"
        );
        // A bare file name's folder is the current one.
        assert_eq!(relative_url(Path::new(""), Path::new("out.mp4")), "out.mp4");
    }
}
