//! Reading JSON request bodies, the same way for every API: an empty body, a syntax or type
//! error, or a string holding NUL is refused with a message that names the problem and its
//! position but never echoes a value. Each protocol wraps the message in its own error.

pub const NUL_MESSAGE: &str = "Invalid JSON: no string may contain NUL (\\u0000).";

/// Parses a JSON body into `T`; the error is the message to answer.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    if body.is_empty() {
        return Err("The request body is empty; a JSON object is required.".into());
    }
    // serde_json messages name the problem and position, never echo values beyond a field name.
    let value = serde_json::from_slice(body).map_err(|e| format!("Invalid JSON: {e}"))?;
    if has_nul(body) {
        return Err(NUL_MESSAGE.into());
    }
    Ok(value)
}

/// True when a string of the (syntactically valid) JSON text `body` holds NUL, which can only
/// be written as the escape `\u0000`. No field of these APIs may hold it: PostgreSQL text
/// cannot store or compare NUL, so it would fail there as a server error where SQLite stores it.
pub fn has_nul(body: &[u8]) -> bool {
    let mut in_string = false;
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                if body.get(i + 1) == Some(&b'u') && body.get(i + 2..i + 6) == Some(b"0000") {
                    return true;
                }
                i += 2;
                continue;
            }
            0 => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::has_nul;

    #[test]
    fn nul_escapes_are_found_in_strings_only_as_escapes() {
        assert!(has_nul(br#"{"a":"x\u0000y"}"#));
        assert!(has_nul(br#"{"a\u0000":1}"#));
        assert!(has_nul(br#"["\"", "\u0000"]"#));
        assert!(
            !has_nul(br#"{"a":"\\u0000"}"#),
            "an escaped backslash, then text"
        );
        assert!(!has_nul(br#"{"a":"\u0001 u0000"}"#));
        assert!(has_nul(br#"{"a":"\u00000"}"#), "NUL, then a zero");
        assert!(!has_nul(br#"{"u0000":"0000"}"#));
    }

    #[test]
    fn empty_and_broken_bodies_are_refused_without_echoing_values() {
        assert!(super::parse::<serde_json::Value>(b"").is_err());
        let e = super::parse::<serde_json::Value>(br#"{"pan":"4111111111111111""#)
            .expect_err("truncated");
        assert!(!e.contains("4111"), "{e}");
    }
}
