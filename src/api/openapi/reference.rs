//! The console's view of an OpenAPI document: operations with their parameters, request fields
//! and response fields, flattened to rows (`customer.billingCity`, `errors[].errorCode`) with
//! type, requiredness, limits and description. Built once per process from the documents the
//! server serves, so the page and the JSON never differ.

use serde_json::{Map, Value};

/// A document, ready to render.
pub struct Reference {
    pub name: &'static str,
    pub title: String,
    pub version: String,
    pub description: String,
    pub url: String,
    pub groups: Vec<Group>,
    /// Requests Coffer sends (the IXOPAY callbacks).
    pub webhooks: Vec<Operation>,
}

/// The operations of one tag, in document order.
pub struct Group {
    pub tag: String,
    pub description: String,
    pub operations: Vec<Operation>,
}

pub struct Operation {
    /// The element id on the page: `<document>-<operationId>`.
    pub anchor: String,
    pub method: String,
    pub path: String,
    pub summary: String,
    pub description: String,
    pub security: String,
    pub parameters: Vec<Param>,
    pub request: Vec<Field>,
    pub request_description: String,
    pub responses: Vec<Response>,
}

pub struct Param {
    pub name: String,
    pub location: String,
    pub required: bool,
    pub kind: String,
    pub limits: String,
    pub description: String,
}

/// One field of a body, by its dotted path.
pub struct Field {
    pub name: String,
    pub kind: String,
    pub required: bool,
    pub limits: String,
    pub description: String,
}

pub struct Response {
    pub status: String,
    pub description: String,
    pub headers: Vec<String>,
    pub media: String,
    pub fields: Vec<Field>,
}

/// Parses `json` (an OpenAPI 3.1 document) into its reference. `None` when it is not JSON.
pub fn build(name: &'static str, url: String, json: &str) -> Option<Reference> {
    let doc: Value = serde_json::from_str(json).ok()?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let info = doc.get("info");
    let mut groups: Vec<Group> = doc
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| Group {
            tag: text(t.get("name")),
            description: text(t.get("description")),
            operations: vec![],
        })
        .collect();
    for op in operations(&doc, name, doc.get("paths")) {
        let (tag, op) = op;
        match groups.iter_mut().find(|g| g.tag == tag) {
            Some(g) => g.operations.push(op),
            None => groups.push(Group {
                tag,
                description: String::new(),
                operations: vec![op],
            }),
        }
    }
    groups.retain(|g| !g.operations.is_empty());
    let webhooks = operations(&doc, name, doc.get("webhooks"))
        .into_iter()
        .map(|(_, op)| op)
        .collect();
    Some(Reference {
        name,
        title: text(info.and_then(|i| i.get("title"))),
        version: text(info.and_then(|i| i.get("version"))),
        description: text(info.and_then(|i| i.get("description"))),
        url,
        groups,
        webhooks,
    })
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "options"];

/// Every operation of a `paths` (or `webhooks`) object with its first tag.
fn operations(doc: &Value, name: &str, paths: Option<&Value>) -> Vec<(String, Operation)> {
    let mut out = vec![];
    let Some(paths) = paths.and_then(Value::as_object) else {
        return out;
    };
    for (path, item) in paths {
        let shared: Vec<&Value> = item
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        for method in METHODS {
            let Some(op) = item.get(method) else {
                continue;
            };
            let text = |k: &str| op.get(k).and_then(Value::as_str).unwrap_or_default();
            let id = text("operationId");
            let tag = op
                .get("tags")
                .and_then(|t| t.get(0))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let params = shared
                .iter()
                .copied()
                .chain(
                    op.get("parameters")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten(),
                )
                .map(|p| param(doc, p))
                .collect();
            let body = op.get("requestBody").map(|b| resolve(doc, b).0);
            let (request, request_description) = match body {
                Some(b) => (
                    b.pointer("/content/application~1json/schema")
                        .map(|s| fields(doc, s, "", 0))
                        .unwrap_or_default(),
                    b.get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                ),
                None => (vec![], String::new()),
            };
            let responses = op
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(status, r)| response(doc, status, r))
                .collect();
            out.push((
                tag,
                Operation {
                    anchor: format!("{name}-{id}"),
                    method: method.to_ascii_uppercase(),
                    path: path.clone(),
                    summary: text("summary").to_string(),
                    description: text("description").to_string(),
                    security: security(doc, op),
                    parameters: params,
                    request,
                    request_description,
                    responses,
                },
            ));
        }
    }
    out
}

/// Follows `$ref`s inside the document; answers the target and the name of the last one.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> (&'a Value, Option<&'a str>) {
    let mut cur = v;
    let mut name = None;
    for _ in 0..16 {
        let Some(r) = cur.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let Some(target) = r.strip_prefix('#').and_then(|p| doc.pointer(p)) else {
            break;
        };
        name = r.rsplit('/').next();
        cur = target;
    }
    (cur, name)
}

fn param(doc: &Value, p: &Value) -> Param {
    let (p, _) = resolve(doc, p);
    let text = |k: &str| {
        p.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let schema = p.get("schema").map(|s| resolve(doc, s).0);
    Param {
        name: text("name"),
        location: text("in"),
        required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
        kind: schema.map(|s| kind(doc, s)).unwrap_or_default(),
        limits: schema.map(limits).unwrap_or_default(),
        description: text("description"),
    }
}

fn security(doc: &Value, op: &Value) -> String {
    let Some(reqs) = op.get("security").and_then(Value::as_array) else {
        return "none".into();
    };
    if reqs.is_empty() {
        return "none".into();
    }
    let schemes = doc.pointer("/components/securitySchemes");
    reqs.iter()
        .filter_map(Value::as_object)
        .map(|r| {
            r.iter()
                .map(|(name, scopes)| {
                    let label = match schemes.and_then(|s| s.get(name)) {
                        Some(s) => match s.get("type").and_then(Value::as_str) {
                            Some("http") => format!(
                                "HTTP {} ({name})",
                                s.get("scheme").and_then(Value::as_str).unwrap_or_default()
                            ),
                            Some("oauth2") => format!("OAuth 2 bearer ({name})"),
                            Some("apiKey") => format!(
                                "{} header ({name})",
                                s.get("name").and_then(Value::as_str).unwrap_or_default()
                            ),
                            _ => name.clone(),
                        },
                        None => name.clone(),
                    };
                    let scopes: Vec<&str> = scopes
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    if scopes.is_empty() {
                        label
                    } else {
                        format!("{label}, scopes {}", scopes.join(" "))
                    }
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect::<Vec<_>>()
        .join("; or ")
}

fn response(doc: &Value, status: &str, r: &Value) -> Response {
    let (r, _) = resolve(doc, r);
    let content = r.get("content").and_then(Value::as_object);
    let (media, schema) = content
        .and_then(|c| c.iter().next())
        .map(|(m, v)| (m.clone(), v.get("schema")))
        .unwrap_or_default();
    Response {
        status: status.to_string(),
        description: r
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        headers: r
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default(),
        media,
        fields: schema.map(|s| fields(doc, s, "", 0)).unwrap_or_default(),
    }
}

/// The type of a schema in words: `string`, `integer | null`, `object (CardData)`,
/// `one of CardData, IbanData`, `array of PaymentInstrument`.
fn kind(doc: &Value, s: &Value) -> String {
    let (t, name) = resolve(doc, s);
    if let Some(alts) = t.get("oneOf").and_then(Value::as_array) {
        let names: Vec<String> = alts
            .iter()
            .map(|a| match resolve(doc, a) {
                (_, Some(n)) => n.to_string(),
                (v, None) => kind(doc, v),
            })
            .collect();
        return format!("one of {}", names.join(", "));
    }
    if let Some(c) = t.get("const") {
        return format!("{} (always {c})", json_type(c));
    }
    let base = match t.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ if t.get("allOf").is_some() || t.get("properties").is_some() => "object".into(),
        _ => "any".into(),
    };
    if base.starts_with("array")
        && let Some(items) = t.get("items")
    {
        return format!("array of {}", kind(doc, items));
    }
    match name {
        Some(n) if base.starts_with("object") => format!("object ({n})"),
        _ => base,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The limits of a schema in words.
fn limits(s: &Value) -> String {
    let n = |k: &str| s.get(k).and_then(Value::as_u64);
    let mut out = vec![];
    match (n("minLength"), n("maxLength")) {
        (Some(a), Some(b)) if a == b => out.push(format!("exactly {a} characters")),
        (Some(a), Some(b)) => out.push(format!("{a} to {b} characters")),
        (None, Some(b)) => out.push(format!("at most {b} characters")),
        (Some(a), None) => out.push(format!("at least {a} characters")),
        (None, None) => {}
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str) {
        out.push(format!("pattern {p}"));
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        let vals: Vec<String> = e
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        out.push(format!("one of: {}", vals.join(", ")));
    }
    match (n("minimum"), n("maximum")) {
        (Some(a), Some(b)) => out.push(format!("{a} to {b}")),
        (Some(a), None) => out.push(format!("at least {a}")),
        (None, Some(b)) => out.push(format!("at most {b}")),
        (None, None) => {}
    }
    if let Some(m) = n("maxProperties") {
        out.push(format!("at most {m} keys"));
    }
    if let Some(m) = n("minItems") {
        out.push(format!("at least {m} items"));
    }
    if let Some(m) = n("maxItems") {
        out.push(format!("at most {m} items"));
    }
    if let Some(d) = s.get("default") {
        out.push(format!("default {d}"));
    }
    out.join("; ")
}

fn description(s: &Value) -> String {
    s.get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The fields of a body schema, depth first, by dotted path (`[]` for array items).
fn fields(doc: &Value, s: &Value, prefix: &str, depth: usize) -> Vec<Field> {
    let mut out = vec![];
    if depth > 6 {
        return out;
    }
    let (s, _) = resolve(doc, s);
    for part in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.extend(fields(doc, part, prefix, depth + 1));
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        for a in alts {
            let (target, name) = resolve(doc, a);
            if target.get("properties").is_none() && target.get("allOf").is_none() {
                continue;
            }
            let label = name.unwrap_or("variant");
            for mut f in fields(doc, a, prefix, depth + 1) {
                f.description = if f.description.is_empty() {
                    format!("In {label}.")
                } else {
                    format!("In {label}. {}", f.description)
                };
                out.push(f);
            }
        }
    }
    let required: Vec<&str> = s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let empty = Map::new();
    let props = s
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, p) in props {
        let path = format!("{prefix}{name}");
        let (t, _) = resolve(doc, p);
        let mut desc = description(p);
        if desc.is_empty() {
            desc = description(t);
        }
        out.push(Field {
            name: path.clone(),
            kind: kind(doc, p),
            required: required.contains(&name.as_str()),
            limits: limits(t),
            description: desc,
        });
        if t.get("properties").is_some() || t.get("oneOf").is_some() || t.get("allOf").is_some() {
            out.extend(fields(doc, p, &format!("{path}."), depth + 1));
        } else if let Some(items) = t.get("items") {
            let (it, _) = resolve(doc, items);
            if it.get("properties").is_some() || it.get("oneOf").is_some() {
                out.extend(fields(doc, items, &format!("{path}[]."), depth + 1));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op<'a>(r: &'a Reference, anchor: &str) -> &'a Operation {
        r.groups
            .iter()
            .flat_map(|g| &g.operations)
            .chain(&r.webhooks)
            .find(|o| o.anchor == anchor)
            .unwrap_or_else(|| panic!("no operation {anchor}"))
    }

    #[test]
    fn both_documents_are_rendered_with_every_operation() {
        let ix = build(
            "ixopay",
            "/openapi/ixopay.json".into(),
            super::super::IXOPAY.json,
        )
        .expect("ixopay parses");
        let n: usize = ix.groups.iter().map(|g| g.operations.len()).sum();
        assert_eq!(
            n, 14,
            "7 transaction types, 3 profile ops, 2 status, tokenize + preflight"
        );
        let debit = op(&ix, "ixopay-debit");
        assert_eq!(debit.method, "POST");
        assert_eq!(debit.path, "/api/v3/transaction/{apiKey}/debit");
        let amount = debit
            .request
            .iter()
            .find(|f| f.name == "amount")
            .expect("amount");
        assert!(amount.required);
        assert!(amount.limits.contains("pattern"), "{}", amount.limits);
        let city = debit
            .request
            .iter()
            .find(|f| f.name == "customer.billingCity")
            .expect("nested fields by path");
        assert_eq!(city.limits, "at most 50 characters");
        assert!(debit.parameters.iter().any(|p| p.name == "Idempotency-Key"));
        assert!(debit.responses.iter().any(|r| r.status == "401"));
        let ok = debit
            .responses
            .iter()
            .find(|r| r.status == "200")
            .expect("200");
        assert!(ok.fields.iter().any(|f| f.name == "errors[].errorCode"));
        assert!(debit.security.contains("HTTP basic"), "{}", debit.security);
        // The transaction callback and the lifecycle event.
        assert_eq!(ix.webhooks.len(), 2);
        let mo = build(
            "monri",
            "/openapi/monri.json".into(),
            super::super::MONRI.json,
        )
        .expect("monri parses");
        let pm = op(&mo, "monri-merchantPaymentMethods");
        assert!(pm.security.contains("payment-methods"), "{}", pm.security);
        assert!(
            pm.parameters
                .iter()
                .any(|p| p.name == "limit" && p.limits.contains("1 to 100"))
        );
    }
}
