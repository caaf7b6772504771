//! Group commit on SQLite (`src/db/group.rs`): concurrent write transactions share commits,
//! a failing or panicking one rolls back alone, and each returns only once its work is
//! committed (visible to another connection). On PostgreSQL the same calls keep the same
//! outcomes, without a group (every transaction commits on its own).

use std::sync::Arc;

use coffer::db::{DbConnection, DbPool, write_tx};
use coffer::error::ServiceError;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};

use crate::helpers::{PgDb, fresh_pg};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn rows_with(conn: &mut DbConnection, n: i32) -> i64 {
    diesel::sql_query("SELECT COUNT(*) AS n FROM gc WHERE n = $1")
        .bind::<Integer, _>(n)
        .get_result::<Count>(conn)
        .expect("count")
        .n
}

/// A fresh PostgreSQL database when the run targets it (with its guard), else a SQLite file.
fn database(dir: &tempfile::TempDir) -> (String, Option<PgDb>) {
    match fresh_pg() {
        Some((url, guard)) => (url, Some(guard)),
        None => (dir.path().join("group.db").display().to_string(), None),
    }
}

/// How member `i` of the test behaves.
fn fails(i: i32) -> bool {
    i % 8 == 3
}
const PANICS: i32 = 13;
const MEMBERS: i32 = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_write_transactions_share_commits_and_a_failing_one_rolls_back_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, pg) = database(&dir);
    let pool = Arc::new(DbPool::connect(&url, 8).expect("pool"));
    pool.run(|c| {
        c.batch_execute("CREATE TABLE gc (n INTEGER PRIMARY KEY, note TEXT NOT NULL)")?;
        Ok(())
    })
    .await
    .expect("table");
    let before = pool.group_stats();

    let mut tasks = Vec::new();
    for i in 0..MEMBERS {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            pool.run(move |conn| {
                let r = write_tx(conn, |c| {
                    diesel::sql_query("INSERT INTO gc (n, note) VALUES ($1, 'first')")
                        .bind::<Integer, _>(i)
                        .execute(c)?;
                    // Long enough inside the lock for the others to queue behind it.
                    std::thread::sleep(std::time::Duration::from_micros(500));
                    if i == PANICS {
                        panic!("member {i} panics inside its transaction (expected by the test)");
                    }
                    if fails(i) {
                        // The same key again: a unique violation, after this member's first
                        // insert, which must be rolled back with it and alone.
                        diesel::sql_query("INSERT INTO gc (n, note) VALUES ($1, 'again')")
                            .bind::<Integer, _>(i)
                            .execute(c)?;
                    }
                    Ok::<_, ServiceError>(())
                });
                // Once write_tx has answered, the row is committed: this task's own pooled
                // connection (not the one the group wrote on) sees it.
                let seen = rows_with(conn, i);
                Ok((r.is_ok(), seen))
            })
            .await
        }));
    }
    let mut ok = 0;
    for (i, t) in (0..MEMBERS).zip(tasks) {
        let joined = t.await.expect("task");
        if i == PANICS {
            assert!(joined.is_err(), "the panicking member must not succeed");
            continue;
        }
        let (succeeded, seen) = joined.expect("run");
        assert_eq!(
            succeeded,
            !fails(i),
            "member {i}: only the failing members fail"
        );
        assert_eq!(
            seen,
            i64::from(succeeded),
            "member {i}: its row is committed when write_tx returns Ok, and absent when it failed"
        );
        ok += i64::from(succeeded);
    }

    // What is stored: exactly the successful members' first rows, and nothing else.
    let (total, panicked) = pool
        .run(|c| {
            let total = diesel::sql_query("SELECT COUNT(*) AS n FROM gc").get_result::<Count>(c)?;
            Ok((total.n, rows_with(c, PANICS)))
        })
        .await
        .expect("count");
    assert_eq!(
        total, ok,
        "every success stored once, every failure rolled back"
    );
    assert_eq!(panicked, 0, "the panicking member's insert was rolled back");
    assert_eq!(ok, i64::from(MEMBERS - MEMBERS / 8 - 1));

    match (pg.is_some(), before, pool.group_stats()) {
        (true, None, None) => {} // PostgreSQL: no group, each transaction commits alone.
        (false, Some(b), Some(a)) => {
            let commits = a.commits - b.commits;
            let members = a.members - b.members;
            eprintln!("group commit: {members} write transactions in {commits} commits");
            assert_eq!(members, MEMBERS as u64, "every member ran in a batch");
            assert!(
                commits * 2 <= members,
                "concurrent writers share commits: {members} transactions took {commits} commits"
            );
        }
        other => panic!("group commit must be on for SQLite only: {other:?}"),
    }
}

#[tokio::test]
async fn with_group_commit_switched_off_every_transaction_commits_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, _pg) = database(&dir);
    let pool = DbPool::connect_with(&url, 2, false).expect("pool");
    assert!(pool.group_stats().is_none(), "switched off: no group");
    pool.run(|c| {
        c.batch_execute("CREATE TABLE gc (n INTEGER PRIMARY KEY, note TEXT NOT NULL)")?;
        write_tx(c, |c| {
            diesel::sql_query("INSERT INTO gc (n, note) VALUES (1, 'x')").execute(c)?;
            Ok::<_, ServiceError>(())
        })?;
        assert_eq!(
            rows_with(c, 1),
            1,
            "committed on the caller's own connection"
        );
        Ok(())
    })
    .await
    .expect("write");
    // The setting that switches it off: COFFER_SQLITE_GROUP_COMMIT (on by default).
    let on = coffer::config::Settings::for_tests(dir.path(), None);
    assert!(on.sqlite_group_commit);
}
