use std::collections::BTreeSet;

fn versions(backend: &str) -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    std::fs::read_dir(&dir)
        .expect("migrations dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn both_backends_have_the_same_migration_versions() {
    let sqlite = versions("sqlite");
    let pg = versions("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, pg,
        "migrations/sqlite and migrations/postgres must hold the same versions"
    );
    for v in &sqlite {
        for backend in ["sqlite", "postgres"] {
            let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(backend)
                .join(v);
            assert!(
                d.join("up.sql").is_file() && d.join("down.sql").is_file(),
                "{backend}/{v} needs up.sql and down.sql"
            );
        }
    }
}
