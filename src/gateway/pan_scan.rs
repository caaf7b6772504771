//! Finds card numbers where none belong: any value of a JSON request that looks like a card
//! number. The JSON APIs refuse such a request (a card number may only be sent to the
//! tokenize endpoint, in its `number` field), so a PAN pasted into a stray or free-text field is
//! never written anywhere.
//!
//! **What looks like a card number**
//! * A JSON string that, with leading and trailing whitespace trimmed, consists of ASCII digits
//!   with optional spaces or dashes between them (any number of them, never first or last:
//!   `4111 1111 1111 1111`, `4111-1111-1111-1111`), and whose 13 to 19 digits pass the Luhn
//!   check. A sentence that contains a card number among words (`order 4111…`) is not matched,
//!   nor is anything with other characters (`+43 …`, IBANs, hex ids).
//! * A JSON number that is an integer of 13 to 19 digits passing Luhn (the sign ignored); a
//!   float is read as an integer only when it is one exactly (at most 2^53).
//! * An object key of that shape (keys are stored too, e.g. in `extraData`).
//!
//! **Paths** name where the value was found: object members joined with dots, array elements
//! as `[index]`: `card.number`, `items[0].note`, `customer.extraData.memo`. The top-level value
//! itself is `$`. A key that looks like a card number is named `<key>` in its place
//! (`extraData.<key>`), since the key itself must not be echoed. Keys are used as they are:
//! a key containing `.` or `[` makes the path ambiguous, which is harmless in a message.

use serde_json::{Number, Value};

use crate::gateway::card::luhn_valid;

/// The JSON path of the first value of `v` (members in key order) that looks like a card
/// number, skipping the values at the paths in `skip` (and everything inside them).
pub fn find_card_number(v: &Value, skip: &[&str]) -> Option<String> {
    let mut path = String::new();
    walk(v, skip, &mut path)
}

/// Whether the string is a card number as described in the module documentation.
pub fn looks_like_card_number(s: &str) -> bool {
    let t = s.trim();
    let bytes = t.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !first.is_ascii_digit() || !last.is_ascii_digit() {
        return false;
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_digit() || *b == b' ' || *b == b'-')
    {
        return false;
    }
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    is_card_digits(&digits)
}

fn is_card_digits(digits: &str) -> bool {
    (13..=19).contains(&digits.len()) && luhn_valid(digits)
}

/// The decimal digits of an integral JSON number, without its sign.
fn integer_digits(n: &Number) -> Option<String> {
    if let Some(u) = n.as_u64() {
        return Some(u.to_string());
    }
    if let Some(i) = n.as_i64() {
        return Some(i.unsigned_abs().to_string());
    }
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer up to here is exact
    let f = n.as_f64()?.abs();
    (f.fract() == 0.0 && f <= EXACT).then(|| format!("{f:.0}"))
}

fn shown(path: &str) -> String {
    if path.is_empty() {
        "$".into()
    } else {
        path.to_string()
    }
}

fn walk(v: &Value, skip: &[&str], path: &mut String) -> Option<String> {
    if !path.is_empty() && skip.contains(&path.as_str()) {
        return None;
    }
    match v {
        Value::String(s) => looks_like_card_number(s).then(|| shown(path)),
        Value::Number(n) => integer_digits(n)
            .is_some_and(|d| is_card_digits(&d))
            .then(|| shown(path)),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = walk(item, skip, path);
            path.truncate(len);
            found
        }),
        Value::Object(members) => members.iter().find_map(|(k, item)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            if looks_like_card_number(k) {
                path.push_str("<key>");
                let found = path.clone();
                path.truncate(len);
                return Some(found);
            }
            path.push_str(k);
            let found = walk(item, skip, path);
            path.truncate(len);
            found
        }),
        Value::Null | Value::Bool(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VISA: &str = "4111111111111111";

    fn find(v: Value) -> Option<String> {
        find_card_number(&v, &[])
    }

    #[test]
    fn plain_spaced_and_dashed_numbers_are_found() {
        for s in [
            VISA,
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            " 4111 1111-1111 1111\n",
            "4111  1111  1111  1111",
            "378282246310005",
            "6011111111111117",
            "4000000000003220",
        ] {
            assert_eq!(find(json!({ "a": s })).as_deref(), Some("a"), "{s:?}");
        }
    }

    #[test]
    fn lengths_outside_13_to_19_are_not_card_numbers() {
        // 12 and 20 digits, each passing Luhn.
        for s in ["411111111117", "41111111111111111115"] {
            assert!(luhn_valid(s), "{s} passes Luhn, so only its length decides");
            assert_eq!(find(json!({ "a": s })), None, "{s}");
        }
        // 13 and 19 digits are.
        for s in ["4222222222222", "4111111111111111003"] {
            assert!(luhn_valid(s), "{s}");
            assert_eq!(find(json!({ "a": s })).as_deref(), Some("a"), "{s}");
        }
    }

    #[test]
    fn a_luhn_failure_or_other_characters_are_not_card_numbers() {
        for s in [
            "4111111111111112",
            "4111 1111 1111 111x",
            "order 4111 1111 1111 1111",
            "4111 1111 1111 1111 please",
            "-4111111111111111",
            "4111111111111111-",
            "+4111111111111111",
            "4111.1111.1111.1111",
            "AT483200000012345864",
            "",
            "   ",
        ] {
            assert_eq!(find(json!({ "a": s })), None, "{s:?}");
        }
    }

    #[test]
    fn paths_name_nested_objects_and_arrays() {
        let v = json!({
            "amount": "9.99",
            "items": [{"name": "Book"}, {"name": "Pen", "note": ["x", VISA]}],
        });
        assert_eq!(find(v).as_deref(), Some("items[1].note[1]"));
        let v = json!({"card": {"number": "4111 1111 1111 1111", "cvv": "123"}});
        assert_eq!(find(v).as_deref(), Some("card.number"));
        assert_eq!(find(json!([[1, VISA]])).as_deref(), Some("[0][1]"));
        assert_eq!(find(json!(VISA)).as_deref(), Some("$"));
        assert_eq!(
            find(json!({"extraData": {VISA: "x"}})).as_deref(),
            Some("extraData.<key>"),
            "a key is named without echoing it"
        );
        assert_eq!(
            find(json!({"a": {"b": true, "c": null, "d": 12, "e": "text 4111"}})),
            None
        );
    }

    #[test]
    fn skipped_paths_are_not_examined() {
        let v = json!({"number": VISA, "cardHolder": "Ann", "cvv": "123"});
        assert_eq!(find_card_number(&v, &["number"]), None);
        let v = json!({"number": VISA, "cardHolder": VISA});
        assert_eq!(
            find_card_number(&v, &["number"]).as_deref(),
            Some("cardHolder")
        );
        let v = json!({"outer": {"number": VISA}});
        assert_eq!(
            find_card_number(&v, &["number"]).as_deref(),
            Some("outer.number"),
            "a skip path is a whole path, not a member name anywhere"
        );
        assert_eq!(find_card_number(&v, &["outer"]), None, "and its subtree");
    }

    #[test]
    fn json_numbers_are_card_numbers_too() {
        assert_eq!(
            find(json!({"card": 4111111111111111_u64})).as_deref(),
            Some("card")
        );
        assert_eq!(
            find(json!({"card": -4111111111111111_i64})).as_deref(),
            Some("card")
        );
        let v: Value = serde_json::from_str(r#"{"card": 4111111111111111.0}"#).expect("json");
        assert_eq!(find(v).as_deref(), Some("card"));
        let v: Value = serde_json::from_str(r#"{"card": 4.111111111111111e15}"#).expect("json");
        assert_eq!(find(v).as_deref(), Some("card"));
        let v: Value = serde_json::from_str(r#"{"n": 4111111111111111003}"#).expect("json");
        assert_eq!(find(v).as_deref(), Some("n"), "19 digits fit in u64");
        for ok in [
            json!({"amount": 999}),
            json!({"n": 4111111111111112_u64}),
            json!({"n": 411111111117_u64}),
            json!({"n": 12.5}),
        ] {
            assert_eq!(find(ok.clone()), None, "{ok}");
        }
    }
}
