//! Profile search (issue 13, points 6 and 7): `/profiles?q=` across every container in the
//! caller's scope and `/containers/{id}?q=` within one; each match kind, the scope of each role,
//! keyset paging both ways, a merchant admin's "Customer Profiles" entry whose links never answer
//! 403, bad input, and the indexes each search query uses.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use coffer::models::container::Container;
use reqwest::StatusCode;

use crate::helpers::*;

fn insert_profile(
    app: &TestApp,
    container: &str,
    connector: &str,
    ident: &str,
    email: &str,
    last_four: &str,
) -> SeededProfile {
    seed_card_profile(app, container, connector, ident, email, "Ann", last_four)
}

/// A container of Acme Retail that no connector uses (so no merchant admin reads it).
fn retail_container(app: &TestApp, name: &str) -> String {
    let db = app.db();
    let mut c = db.get().expect("conn");
    let t = coffer::models::tenant::find_by_name(&mut c, "Acme Retail")
        .expect("q")
        .expect("Acme Retail");
    let at = coffer::models::now();
    let k = Container {
        id: coffer::ids::new_id(),
        tenant_id: t.id.clone(),
        tenant_path: t.path.clone(),
        name: name.to_string(),
        profile_count: 0,
        instrument_count: 0,
        created_at: at,
        updated_at: at,
    };
    coffer::models::container::insert(&mut c, &k).expect("insert container");
    k.id
}

/// The profile ids linked from a result page.
fn hits(body: &str) -> Vec<String> {
    body.split("href=\"/profiles/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|id| !id.contains('/'))
        .map(str::to_string)
        .collect()
}

/// The cursor of the link `?{name}=…` on a page, if it has one.
fn link(body: &str, name: &str) -> Option<String> {
    body.split(&format!("?{name}="))
        .nth(1)
        .and_then(|s| s.split(['"', '&']).next())
        .map(str::to_string)
}

#[tokio::test]
async fn each_match_kind_finds_the_profile_across_containers_and_within_one() {
    let app = TestApp::demo().await;
    let a = insert_profile(
        &app,
        "Acme Shared Profiles",
        "Acme Shop Cards",
        "Zed-Alpha-1",
        "Zed.Person@Example.org",
        "4242",
    );
    let other = insert_profile(
        &app,
        "Globex Profiles",
        "Globex Cards",
        "other-1",
        "other@example.org",
        "1111",
    );
    app.login_ok("admin", "admin-demo").await;
    let found = |q: String| {
        let app = &app;
        async move {
            let (s, body) = app.get_html(&format!("/profiles?q={q}")).await;
            assert_eq!(s, StatusCode::OK, "/profiles?q={q}");
            hits(&body)
        }
    };
    let only_a = vec![a.id.clone()];
    assert_eq!(
        found("Zed-Al".into()).await,
        only_a,
        "identification prefix"
    );
    assert_eq!(
        found("Zed-Alpha-1".into()).await,
        only_a,
        "whole identification"
    );
    assert!(
        found("zed-al".into()).await.is_empty(),
        "the identification prefix is case-sensitive"
    );
    assert_eq!(
        found("ZED.PER".into()).await,
        only_a,
        "email prefix, any case"
    );
    assert_eq!(found("zed.person%40example.org".into()).await, only_a);
    assert_eq!(found(a.guid.clone()).await, only_a, "profileGuid");
    assert!(
        found(a.guid[..10].to_string()).await.is_empty(),
        "the profileGuid matches exactly"
    );
    assert_eq!(found(a.uuid.clone()).await, only_a, "Monri uuid");
    assert_eq!(
        found(a.uuid.to_uppercase()).await,
        only_a,
        "Monri uuid, any case"
    );
    assert!(
        found(a.uuid[..8].to_string()).await.is_empty(),
        "the uuid matches exactly"
    );
    assert_eq!(found("4242".into()).await, only_a, "a card's last four");
    assert!(found("424".into()).await.is_empty(), "exactly four digits");
    assert_eq!(found("1111".into()).await, vec![other.id.clone()]);

    // The result says which container the profile is in, with a link to it.
    let shared = container_id(&app, "Acme Shared Profiles");
    let (_, body) = app.get_html("/profiles?q=Zed-Al").await;
    assert!(
        body.contains(&format!(
            "<a href=\"/containers/{shared}\">Acme Shared Profiles</a>"
        )),
        "the container column: {body}"
    );

    // Within one container, the same matches.
    let globex = container_id(&app, "Globex Profiles");
    for q in [
        "Zed-Al",
        "ZED.PER",
        "4242",
        a.guid.as_str(),
        a.uuid.as_str(),
    ] {
        let (s, body) = app.get_html(&format!("/containers/{shared}?q={q}")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(hits(&body), only_a, "in the container, {q}");
        let (_, body) = app.get_html(&format!("/containers/{globex}?q={q}")).await;
        assert!(hits(&body).is_empty(), "not in another container, {q}");
    }
}

#[tokio::test]
async fn a_tenant_manager_finds_its_subtree_and_shared_containers_but_not_another_tenants() {
    let app = TestApp::demo().await;
    retail_container(&app, "Acme Retail Private");
    let shared = insert_profile(
        &app,
        "Acme Shared Profiles",
        "Acme Shop Cards",
        "scope-shared",
        "s1@example.org",
        "5151",
    );
    let private = insert_profile(
        &app,
        "Acme Retail Private",
        "Acme Outlet Cards",
        "scope-private",
        "s2@example.org",
        "5151",
    );
    let globex = insert_profile(
        &app,
        "Globex Profiles",
        "Globex Cards",
        "scope-globex",
        "s3@example.org",
        "5151",
    );
    app.login_ok("manager", "manager-demo").await;
    let (s, body) = app.get_html("/profiles?q=scope-").await;
    assert_eq!(s, StatusCode::OK);
    let found = hits(&body);
    assert!(found.contains(&shared.id) && found.contains(&private.id));
    assert!(!found.contains(&globex.id), "another tenant's profile");
    assert!(!body.contains("scope-globex") && !body.contains("Globex Profiles"));
    let (_, body) = app.get_html("/profiles?q=5151").await;
    assert!(!hits(&body).contains(&globex.id), "nor by its card");
    // profileGuid and uuid are looked up across every container, then kept only in scope.
    for q in [&globex.guid, &globex.uuid] {
        let (_, body) = app.get_html(&format!("/profiles?q={q}")).await;
        assert!(hits(&body).is_empty(), "nor by its guid or uuid: {q}");
    }
    // The platform admin finds all three.
    let admin = app.other_browser();
    admin.login_ok("admin", "admin-demo").await;
    let (_, body) = admin.get_html("/profiles?q=scope-").await;
    assert_eq!(hits(&body).len(), 3);
    // A merchant admin of Acme Shop only reads its connectors' container.
    let merchant = app.other_browser();
    merchant.login_ok("merchant", "merchant-demo").await;
    let (s, body) = merchant.get_html("/profiles?q=5151").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(hits(&body), vec![shared.id.clone()]);
    assert!(body.contains("Acme Shared Profiles"));
    assert!(!body.contains("Acme Retail Private") && !body.contains("Globex Profiles"));
    for q in [&private.guid, &private.uuid, &globex.guid, &globex.uuid] {
        let (_, body) = merchant.get_html(&format!("/profiles?q={q}")).await;
        assert!(
            hits(&body).is_empty(),
            "outside the merchant's containers: {q}"
        );
    }
    let (_, body) = merchant
        .get_html(&format!("/profiles?q={}", shared.uuid))
        .await;
    assert_eq!(hits(&body), vec![shared.id.clone()], "its own, by uuid");
}

#[tokio::test]
async fn lists_page_forward_and_back_with_keyset_cursors() {
    let app = TestApp::demo().await;
    let seeded: Vec<SeededProfile> = (0..120)
        .map(|i| {
            insert_profile(
                &app,
                "Acme Shared Profiles",
                "Acme Shop Cards",
                &format!("page-{i:04}"),
                &format!("page{i}@example.org"),
                "7777",
            )
        })
        .collect();
    let ids = |r: std::ops::Range<usize>| -> Vec<String> {
        r.rev().map(|i| seeded[i].id.clone()).collect()
    };
    app.login_ok("admin", "admin-demo").await;
    for base in [
        "/profiles?q=page-".to_string(),
        format!(
            "/containers/{}?q=page-",
            container_id(&app, "Acme Shared Profiles")
        ),
    ] {
        let path = base.split('?').next().unwrap_or_default().to_string();
        let get = |cursor: String| {
            let app = &app;
            let path = path.clone();
            async move {
                let (s, body) = app.get_html(&format!("{path}?{cursor}&q=page-")).await;
                assert_eq!(s, StatusCode::OK, "{path}?{cursor}");
                body
            }
        };
        let (_, p1) = app.get_html(&base).await;
        assert_eq!(hits(&p1), ids(70..120), "newest first, {base}");
        assert!(link(&p1, "after").is_none(), "no newer page than the first");
        let p2 = get(format!("before={}", link(&p1, "before").expect("older"))).await;
        assert_eq!(hits(&p2), ids(20..70));
        let p3 = get(format!("before={}", link(&p2, "before").expect("older"))).await;
        assert_eq!(hits(&p3), ids(0..20));
        assert!(link(&p3, "before").is_none(), "no older page than the last");
        let back2 = get(format!("after={}", link(&p3, "after").expect("newer"))).await;
        assert_eq!(hits(&back2), ids(20..70), "back to the second page");
        let back1 = get(format!("after={}", link(&back2, "after").expect("newer"))).await;
        assert_eq!(hits(&back1), ids(70..120), "back to the first page");
        assert!(link(&back1, "after").is_none());
        assert!(link(&back1, "before").is_some());
    }
    // The whole list pages too (no term).
    let (_, all) = app.get_html("/profiles").await;
    assert_eq!(hits(&all), ids(70..120));
}

#[tokio::test]
async fn bad_search_input_is_a_400_never_a_500() {
    let app = TestApp::demo().await;
    let shared = container_id(&app, "Acme Shared Profiles");
    app.login_ok("admin", "admin-demo").await;
    let long = "x".repeat(201);
    for path in [
        format!("/profiles?q={long}"),
        "/profiles?q=a%01b".to_string(),
        "/profiles?q=%07".to_string(),
        "/profiles?before=not-a-cursor".to_string(),
        format!("/profiles?before={0}&after={0}", "0".repeat(32)),
        format!("/containers/{shared}?q={long}"),
        format!("/containers/{shared}?q=a%0Ab"),
        format!("/containers/{shared}?after=zz"),
    ] {
        let (s, body) = app.get_html(&path).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            body.contains("search term") || body.contains("page"),
            "{path}: {body}"
        );
    }
    let (s, _) = app
        .get_html(&format!("/profiles?q={}", "x".repeat(200)))
        .await;
    assert_eq!(s, StatusCode::OK, "200 characters are fine");
    let (s, _) = app.get_html("/profiles?q=%25_%27%22%5C").await;
    assert_eq!(
        s,
        StatusCode::OK,
        "LIKE and quote characters are plain text"
    );
}

#[tokio::test]
async fn a_merchant_admin_has_customer_profiles_and_reads_them_without_manage_actions() {
    let app = TestApp::demo().await;
    let p = insert_profile(
        &app,
        "Acme Shared Profiles",
        "Acme Shop Cards",
        "merchant-view-1",
        "mv@example.org",
        "3131",
    );
    let shared = container_id(&app, "Acme Shared Profiles");
    app.login_ok("merchant", "merchant-demo").await;
    let (s, home) = app.get_html("/merchants").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        home.contains("<a href=\"/profiles\">Customer Profiles</a>"),
        "the navigation entry: {home}"
    );
    let (s, list) = app.get_html("/profiles").await;
    assert_eq!(s, StatusCode::OK);
    assert!(list.contains(&format!("href=\"/containers/{shared}\"")));
    assert!(hits(&list).contains(&p.id));
    let (s, page) = app.get_html(&format!("/containers/{shared}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!page.contains("Edit container") && !page.contains("/delete"));
    let (s, page) = app.get_html(&format!("/profiles/{}", p.id)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("merchant-view-1"));
    assert!(!page.contains("/delete"), "read-only: no delete");
    assert_eq!(
        app.get_html(&format!("/profiles/{}/delete", p.id)).await.0,
        StatusCode::FORBIDDEN
    );
}

/// The same-origin links of a page (`href="/…"`), without fragments.
fn links(body: &str) -> Vec<String> {
    body.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|h| h.starts_with('/') && !h.starts_with("//") && !h.starts_with("/static/"))
        .map(|h| {
            h.split('#')
                .next()
                .unwrap_or_default()
                .replace("&amp;", "&")
        })
        .collect()
}

#[tokio::test]
async fn no_link_a_merchant_admin_is_shown_answers_403() {
    let app = TestApp::demo().await;
    let p = insert_profile(
        &app,
        "Acme Shared Profiles",
        "Acme Shop Cards",
        "crawl-1",
        "crawl@example.org",
        "2121",
    );
    let shared = container_id(&app, "Acme Shared Profiles");
    app.login_ok("merchant", "merchant-demo").await;
    let mut queue: VecDeque<String> = ["/merchants", "/profiles", "/profiles?q=crawl"]
        .map(String::from)
        .into();
    let mut seen: BTreeSet<String> = queue.iter().cloned().collect();
    let mut visited = 0;
    while let Some(path) = queue.pop_front() {
        visited += 1;
        assert!(visited <= 400, "the crawl stops");
        let (s, body) = app.get_html(&path).await;
        assert_ne!(
            s,
            StatusCode::FORBIDDEN,
            "{path} is shown to a merchant admin"
        );
        assert!(!s.is_server_error(), "{path}: {s}");
        if !s.is_success() {
            continue;
        }
        for l in links(&body) {
            if seen.insert(l.clone()) {
                queue.push_back(l);
            }
        }
    }
    for must in [
        "/profiles".to_string(),
        format!("/containers/{shared}"),
        format!("/profiles/{}", p.id),
    ] {
        assert!(seen.contains(&must), "the crawl reached {must}: {seen:?}");
    }
}

/// From now on, the SQL of every query `c` runs (without its binds), in order.
fn capture_queries(c: &mut coffer::db::DbConnection) -> Arc<Mutex<Vec<String>>> {
    use diesel::connection::{Connection, InstrumentationEvent};
    let captured = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = captured.clone();
    c.set_instrumentation(move |e: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = e {
            let text = query.to_string();
            let sql = text
                .split(" -- binds:")
                .next()
                .unwrap_or_default()
                .to_string();
            sink.lock().expect("lock").push(sql);
        }
    });
    captured
}

/// `sql` with its bind parameters (`?` on SQLite, `$n` on PostgreSQL) replaced by literals
/// (`LIMIT 51`, `ANY(ARRAY['x'])`, else `'x'`), to EXPLAIN it.
fn inline_binds(sql: &str, pg: bool) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(i) = rest.find(if pg { '$' } else { '?' }) {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let digits = if pg {
            after.bytes().take_while(u8::is_ascii_digit).count()
        } else {
            0
        };
        let before = out.trim_end();
        out.push_str(if before.ends_with("LIMIT") {
            "51"
        } else if before.ends_with("ANY(") {
            "ARRAY['x']"
        } else {
            "'x'"
        });
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// Each query a search runs (the real ones, captured from the connection) is an index lookup or
/// range: EXPLAIN shows no full scan of `profiles` or `instruments` (SQLite: a `SCAN` without an
/// index; PostgreSQL: a `Seq Scan`, with sequential scans discouraged so that the tiny test
/// tables do not make them the cheaper plan), and the prefix ranges use the new indexes.
#[tokio::test]
async fn every_search_query_uses_an_index() {
    use coffer::models::profile::{Cursor, Match, Within};
    let app = TestApp::demo().await;
    let pg = is_postgres();
    let db = app.db();
    let mut c = db.get().expect("conn");
    let captured = capture_queries(&mut c);
    let ids = vec![container_id(&app, "Acme Shared Profiles")];
    let expect = [
        (Match::IdentificationPrefix("Zed".into()), "ident_prefix"),
        (Match::EmailPrefix("zed".into()), "email_prefix"),
        (Match::Guid("CP-x".into()), ""),
        (Match::Uuid("u".into()), ""),
        (Match::LastFour("4242".into()), "instruments_last_four"),
    ];
    for (m, index) in &expect {
        for within in [Within::All, Within::Containers(&ids)] {
            for cursor in [
                Cursor::Newest,
                Cursor::Before("f".repeat(32)),
                Cursor::After("0".repeat(32)),
            ] {
                captured.lock().expect("lock").clear();
                coffer::models::profile::search(
                    &mut c,
                    within,
                    std::slice::from_ref(m),
                    &cursor,
                    51,
                )
                .expect("search");
                let sql = captured.lock().expect("lock").pop().expect("a query ran");
                let sql = inline_binds(&sql, pg);
                let plan = explain(&mut c, &sql);
                let joined = plan.join("\n");
                let full_scan = plan.iter().any(|l| {
                    l.contains("Seq Scan")
                        || ((l.contains("SCAN profiles") || l.contains("SCAN instruments"))
                            && !l.contains("INDEX"))
                });
                assert!(!full_scan, "{m:?} {within:?} {cursor:?}\n{sql}\n{joined}");
                if !index.is_empty() && !matches!(within, Within::Containers(_)) {
                    assert!(
                        joined.contains(index),
                        "{m:?} {within:?} {cursor:?} uses {index}\n{sql}\n{joined}"
                    );
                }
            }
        }
    }
}

/// A prefix (or a last four) matching more than `BROAD_PREFIX` profiles (the benchmark's `bench-1` matches
/// `bench-1x`, `bench-1xx`, …) is read in id order rather than sorted: still newest first, still
/// paged, and its query reads `(container_id, id)` in order (no sort of every match).
#[tokio::test]
async fn a_broad_prefix_pages_newest_first_without_sorting_every_match() {
    use coffer::models::profile::{Cursor, Match, Within};
    let app = TestApp::demo().await;
    let n = coffer::models::profile::BROAD_PREFIX as usize + 60;
    let shared = container_id(&app, "Acme Shared Profiles");
    let kid = connector_id(&app, "Acme Shop Cards");
    let ids: Vec<String> = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        (0..n)
            .map(|i| {
                let p = insert_profile_row(
                    &mut c,
                    &shared,
                    &format!("brd-{i:05}"),
                    &format!("brd{i}@example.org"),
                    "{}",
                );
                insert_card(&mut c, &p, &kid, "9999");
                p.id
            })
            .collect()
    };
    let newest =
        |r: std::ops::Range<usize>| -> Vec<String> { r.rev().map(|i| ids[i].clone()).collect() };
    app.login_ok("admin", "admin-demo").await;
    for (path, q) in [
        (format!("/containers/{shared}"), "brd-"),
        ("/profiles".to_string(), "brd-"),
        ("/profiles".to_string(), "9999"),
    ] {
        let base = format!("{path}?q={q}");
        let (_, p1) = app.get_html(&base).await;
        assert_eq!(hits(&p1), newest(n - 50..n), "{base}");
        let older = link(&p1, "before").expect("older");
        let (_, p2) = app.get_html(&format!("{path}?before={older}&q={q}")).await;
        assert_eq!(hits(&p2), newest(n - 100..n - 50), "{base}, page 2");
    }
    // The query that reads the broad prefix, EXPLAINed.
    let db = app.db();
    let mut c = db.get().expect("conn");
    let captured = capture_queries(&mut c);
    let within = [shared.clone()];
    for m in [
        Match::IdentificationPrefix("brd-".into()),
        Match::LastFour("9999".into()),
    ] {
        coffer::models::profile::search(
            &mut c,
            Within::Containers(&within),
            std::slice::from_ref(&m),
            &Cursor::Newest,
            51,
        )
        .expect("search");
        let sql = captured
            .lock()
            .expect("lock")
            .pop()
            .expect("the page query");
        assert!(
            sql.contains("|| '')") || sql.contains("+profiles.") || sql.contains("EXISTS"),
            "{m:?} is read in id order: {sql}"
        );
        let plan = explain(&mut c, &inline_binds(&sql, is_postgres())).join("\n");
        assert!(
            !plan.contains("TEMP B-TREE") && !plan.contains("Seq Scan"),
            "{sql}\n{plan}"
        );
    }
}
