-- The console's transaction list pages newest first on (created_at, uuid) (uuids are random,
-- not time-ordered). One merchant: an ordered range of the first index, no sort. A tenant
-- subtree: the service reads one ordered range of the second index per tenant of the subtree
-- (equality on tenant_path) and merges them, so every page reads at most (page size + 1) rows
-- per tenant instead of sorting the subtree's whole history.
CREATE INDEX transactions_merchant_created ON transactions(merchant_id, created_at, uuid);
CREATE INDEX transactions_path_created ON transactions(tenant_path, created_at, uuid);
-- The profile page lists the profile's transactions.
CREATE INDEX transactions_profile ON transactions(profile_id, created_at);
