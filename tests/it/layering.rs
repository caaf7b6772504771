//! The layering, checked on the source: nothing below the HTTP layers (`src/api`, `src/web`) and
//! the wiring (`src/main.rs`, `src/lib.rs`, `src/startup.rs`) imports actix or those layers, and
//! the `crate::` imports between files form no circle. README, "How it is built".

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const HTTP_AND_WIRING: [&str; 5] = [
    "src/api/",
    "src/web/",
    "src/main.rs",
    "src/lib.rs",
    "src/startup.rs",
];
const FORBIDDEN_BELOW: [&str; 5] = [
    "actix_web",
    "actix_session",
    "askama_web",
    "crate::api",
    "crate::web",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's code without its `#[cfg(test)]` module and without comments.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .expect("under the crate")
        .to_string_lossy()
        .replace('\\', "/")
}

fn files() -> BTreeMap<String, String> {
    let mut paths = vec![];
    sources(&root().join("src"), &mut paths);
    paths.iter().map(|p| (rel(p), code_of(p))).collect()
}

#[test]
fn nothing_below_the_http_layers_imports_actix_or_the_http_layers() {
    let mut offences = vec![];
    for (file, code) in files() {
        if HTTP_AND_WIRING.iter().any(|h| file.starts_with(h)) {
            continue;
        }
        for needle in FORBIDDEN_BELOW {
            if code.contains(needle) {
                offences.push(format!("{file} uses {needle}"));
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

/// The file a `crate::a::b::c` path names: the longest prefix that is a module file.
fn resolve(path: &[&str], known: &BTreeSet<String>) -> Option<String> {
    for n in (1..=path.len()).rev() {
        let base = format!("src/{}", path[..n].join("/"));
        for candidate in [format!("{base}.rs"), format!("{base}/mod.rs")] {
            if known.contains(&candidate) {
                return Some(candidate);
            }
        }
    }
    None
}

/// Every `crate::…` path in the code, `use crate::x::{a, b::c}` groups expanded one level.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = vec![];
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let head: Vec<String> = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if rest[end..].starts_with('{') {
            let close = rest[end..].find('}').map_or(rest.len(), |j| end + j);
            for item in rest[end + 1..close].split(',') {
                let mut p = head.clone();
                p.extend(
                    item.trim()
                        .split("::")
                        .map(|s| s.trim().trim_start_matches('{').to_string())
                        .filter(|s| {
                            !s.is_empty() && s != "self" && !s.starts_with(char::is_uppercase)
                        }),
                );
                out.push(p);
            }
        } else {
            out.push(head);
        }
    }
    out
}

#[test]
fn the_crate_imports_between_files_form_no_circle() {
    let files = files();
    let known: BTreeSet<String> = files.keys().cloned().collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, code) in &files {
        for p in crate_paths(code) {
            let parts: Vec<&str> = p.iter().map(String::as_str).collect();
            if let Some(target) = resolve(&parts, &known)
                && &target != file
                // A module file lists its children; a child naming its parent's items is the
                // ordinary shape of a module, not a circle.
                && !(target.ends_with("mod.rs")
                    && file.starts_with(target.trim_end_matches("mod.rs")))
            {
                edges.entry(file.clone()).or_default().insert(target);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let i = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut circle = stack[i..].to_vec();
                    circle.push(m.clone());
                    return Some(circle);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for f in files.keys() {
        if state.get(f.as_str()).copied().unwrap_or(0) == 0 {
            let circle = visit(f, &edges, &mut state, &mut vec![]);
            assert!(circle.is_none(), "import circle: {:?}", circle);
        }
    }
    // The check sees real imports: the engine imports the sharing rules.
    assert!(edges["src/payments/means.rs"].contains("src/vault/sharing.rs"));
}
