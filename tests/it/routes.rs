//! The app's route table, read from the source at compile time: the fuzzing and the
//! tenant-isolation sweep compare their own tables with it, so that a new route that neither
//! covers fails the suite instead of going untested.

/// The files that build the app: `startup.rs` mounts `web::configure`, which mounts
/// `api::configure`; the test below checks that routes come from nowhere else.
const SOURCES: [(&str, &str); 3] = [
    ("src/startup.rs", include_str!("../../src/startup.rs")),
    ("src/web/mod.rs", include_str!("../../src/web/mod.rs")),
    ("src/api/mod.rs", include_str!("../../src/api/mod.rs")),
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
}

/// Parses every `.route("path", web::get()…)` call (also `web::method(…Method::OPTIONS)`).
fn parse(file: &str, src: &str) -> Vec<Route> {
    let mut out = vec![];
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let lit = rest.trim_start();
        assert!(
            lit.starts_with('"'),
            "{file}: a .route( whose path is not a string literal: {}",
            &lit[..lit.len().min(80)]
        );
        let end = lit[1..].find('"').expect("closing quote") + 1;
        let path = lit[1..end].to_string();
        let after = &lit[end..];
        let w = after.find("web::").expect("web:: after the path") + "web::".len();
        let ident: String = after[w..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let method = if ident == "method" {
            let m = after.find("Method::").expect("Method::") + "Method::".len();
            after[m..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase())
                .collect()
        } else {
            ident.to_uppercase()
        };
        assert!(
            ["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"].contains(&method.as_str()),
            "{file}: unexpected method {method} for {path}"
        );
        out.push(Route { method, path });
        rest = after;
    }
    out
}

/// Every (method, path) the app registers, sorted.
pub fn all() -> Vec<Route> {
    let mut v: Vec<Route> = SOURCES.iter().flat_map(|(f, s)| parse(f, s)).collect();
    v.sort();
    v
}

#[test]
fn the_route_table_is_read_completely_from_the_source() {
    let routes = all();
    // Every `.route(` call was parsed, and routes come from nowhere else.
    let calls: usize = SOURCES
        .iter()
        .map(|(_, s)| s.matches(".route(").count())
        .sum();
    assert_eq!(routes.len(), calls);
    for (file, src) in SOURCES {
        assert!(!src.contains("web::resource("), "{file}: web::resource");
        assert!(!src.contains("web::scope("), "{file}: web::scope");
        // The one service is the static files.
        assert_eq!(
            src.matches(".service(").count(),
            usize::from(file == "src/web/mod.rs"),
            "{file}"
        );
    }
    let (_, startup) = SOURCES[0];
    assert_eq!(startup.matches(".configure(").count(), 1);
    assert!(startup.contains(".configure(crate::web::configure)"));
    assert_eq!(SOURCES[1].1.matches(".configure(").count(), 1);
    assert!(SOURCES[1].1.contains(".configure(crate::api::configure)"));
    for expected in [
        ("GET", "/healthz"),
        ("POST", "/tenants/{id}/delete"),
        ("OPTIONS", "/api/v3/paymentjs/{public_key}/tokenize"),
        ("DELETE", "/v2/customers/{uuid}"),
    ] {
        assert!(
            routes
                .iter()
                .any(|r| r.method == expected.0 && r.path == expected.1),
            "{expected:?} in {routes:?}"
        );
    }
    let mut dedup = routes.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), routes.len(), "a route is registered twice");
}
