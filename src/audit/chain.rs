//! The tamper-evident audit log (PCI DSS 10.3.2): every entry carries a SHA-256 over its
//! canonical content and the previous entry's hash, in one chain per root tenant.
//!
//! One chain per root tenant, not one global chain: appends serialize on their chain's head row
//! (PostgreSQL), so writers of different root tenants never wait for each other, and one
//! tenant's chain can be verified or handed out alone. Entries outside every tenant (platform
//! users, sign-ins of unknown names) form the chain `platform`.

use diesel::Connection;
use sha2::{Digest, Sha256};

use crate::db::DbConnection;
use crate::models::audit::{self, AuditEntry};

/// The `prev_hash` of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The chain of entries that belong to no tenant.
pub const PLATFORM_CHAIN: &str = "platform";

/// The chain an entry belongs to: its root tenant (the first segment of its tenant path).
pub fn chain_of(tenant_path: Option<&str>) -> String {
    tenant_path
        .and_then(|p| p.split('/').find(|s| !s.is_empty()))
        .map_or_else(|| PLATFORM_CHAIN.to_string(), str::to_string)
}

/// SHA-256 (hex) over the entry's canonical content: a JSON array of every field but `hash`,
/// in a fixed order, the time to the microsecond.
pub fn hash_of(e: &AuditEntry) -> String {
    let canonical = serde_json::json!([
        "coffer-audit-v1",
        e.chain,
        e.seq,
        e.prev_hash,
        e.id,
        e.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        e.actor_id,
        e.actor_name,
        e.tenant_id,
        e.tenant_path,
        e.merchant_id,
        e.action,
        e.object_type,
        e.object_id,
        e.summary,
        e.changes,
        e.source_addr,
        e.user_agent,
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Appends entries (their chain fields are set here) in one transaction, each chain's head
/// locked once, chains in name order (so that two batches never wait for each other in a
/// circle).
pub fn append(conn: &mut DbConnection, entries: Vec<AuditEntry>) -> diesel::QueryResult<()> {
    let mut entries: Vec<(String, AuditEntry)> = entries
        .into_iter()
        .map(|e| (chain_of(e.tenant_path.as_deref()), e))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    conn.transaction(|c| {
        let mut i = 0;
        while i < entries.len() {
            let chain = entries[i].0.clone();
            let head = audit::lock_chain(c, &chain, GENESIS)?;
            let (mut seq, mut prev) = (head.seq, head.head_hash);
            let start = i;
            while i < entries.len() && entries[i].0 == chain {
                let e = &mut entries[i].1;
                seq += 1;
                e.chain = Some(chain.clone());
                e.seq = Some(seq);
                e.prev_hash = Some(prev);
                let h = hash_of(e);
                e.hash = Some(h.clone());
                prev = h;
                i += 1;
            }
            let rows: Vec<AuditEntry> = entries[start..i].iter().map(|(_, e)| e.clone()).collect();
            audit::insert_many(c, &rows)?;
            audit::set_head(c, &chain, seq, &prev)?;
        }
        Ok(())
    })
}

/// Chains the entries written before the chain existed, in id (time) order, once: the
/// migration left a mark that the first start (under the start-up lock) takes. Afterwards an
/// entry without a chain is one that was inserted behind Coffer's back.
pub fn chain_legacy(conn: &mut DbConnection) -> anyhow::Result<u64> {
    Ok(conn.transaction(|c| {
        if !audit::take_legacy_pending(c)? {
            return Ok::<u64, diesel::result::Error>(0);
        }
        let mut n = 0;
        loop {
            let rows = audit::unchained(c, 1000)?;
            if rows.is_empty() {
                break;
            }
            for mut e in rows {
                let chain = chain_of(e.tenant_path.as_deref());
                let head = audit::lock_chain(c, &chain, GENESIS)?;
                e.chain = Some(chain.clone());
                e.seq = Some(head.seq + 1);
                e.prev_hash = Some(head.head_hash);
                let h = hash_of(&e);
                e.hash = Some(h.clone());
                audit::set_chained(c, &e)?;
                audit::set_head(c, &chain, head.seq + 1, &h)?;
                n += 1;
            }
        }
        Ok(n)
    })?)
}

/// What `coffer audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        chains: usize,
        entries: u64,
    },
    Broken {
        entry_id: Option<String>,
        reason: String,
    },
}

/// Walks every chain from its first entry to its head and checks each entry's sequence number,
/// its link to the previous entry and its own hash; then that no entry lies outside a chain.
/// The first problem is reported with the id of the entry where the chain breaks: an edited
/// entry (its hash no longer matches), the entry after a removed one (a gap in the sequence),
/// or an inserted one (a wrong link, a repeated number, beyond the head, or in no chain).
pub fn verify(conn: &mut DbConnection) -> diesel::QueryResult<Verdict> {
    let heads = audit::heads(conn)?;
    let mut total = 0u64;
    for head in &heads {
        let (mut seq, mut prev) = (0i64, GENESIS.to_string());
        let mut after: Option<(i64, String)> = None;
        loop {
            let rows = audit::chain_page(
                conn,
                &head.chain,
                after.as_ref().map(|(s, i)| (*s, i.as_str())),
                1000,
            )?;
            if rows.is_empty() {
                break;
            }
            for e in &rows {
                let broken = |reason: String| {
                    Ok(Verdict::Broken {
                        entry_id: Some(e.id.clone()),
                        reason,
                    })
                };
                let s = e.seq.unwrap_or_default();
                if seq >= head.seq {
                    return broken(format!(
                        "entry {} of chain {} lies beyond the chain's head (#{}): inserted",
                        s, head.chain, head.seq
                    ));
                }
                if s == seq {
                    return broken(format!(
                        "entry #{s} of chain {} appears twice: inserted",
                        head.chain
                    ));
                }
                if s != seq + 1 {
                    return broken(format!(
                        "chain {} jumps from #{seq} to #{s}: the entries between were removed",
                        head.chain
                    ));
                }
                if e.prev_hash.as_deref() != Some(prev.as_str()) {
                    return broken(format!(
                        "entry #{s} of chain {} does not link to #{seq}: inserted, or #{seq} \
                         was removed or replaced",
                        head.chain
                    ));
                }
                let h = hash_of(e);
                if e.hash.as_deref() != Some(h.as_str()) {
                    return broken(format!(
                        "entry #{s} of chain {} was changed: its hash does not match its content",
                        head.chain
                    ));
                }
                seq = s;
                prev = h;
                total += 1;
            }
            after = rows
                .last()
                .map(|e| (e.seq.unwrap_or_default(), e.id.clone()));
        }
        if seq != head.seq || prev != head.head_hash {
            return Ok(Verdict::Broken {
                entry_id: None,
                reason: format!(
                    "chain {} ends at #{seq} but its head is #{}: its last entries were removed",
                    head.chain, head.seq
                ),
            });
        }
    }
    let known: Vec<String> = heads.iter().map(|h| h.chain.clone()).collect();
    if let Some(e) = audit::outside_chains(conn, &known, 1)?.into_iter().next() {
        return Ok(Verdict::Broken {
            entry_id: Some(e.id.clone()),
            reason: "the entry is in no chain: inserted".into(),
        });
    }
    Ok(Verdict::Intact {
        chains: heads.len(),
        entries: total,
    })
}

/// `verify` on one consistent snapshot of the database (PostgreSQL: a repeatable-read
/// transaction; SQLite: a read transaction), so that appends made meanwhile are not mistaken for
/// insertions.
pub fn verify_snapshot(conn: &mut DbConnection) -> anyhow::Result<Verdict> {
    use diesel::RunQueryDsl;
    Ok(conn.transaction(|c| {
        if matches!(c, DbConnection::Postgresql(_)) {
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(c)?;
        }
        verify(c)
    })?)
}
