-- Container names are one name whatever their case, per tenant. Names that already differ only
-- in case keep the oldest one as it is; the others get their id appended, so the index holds.
UPDATE containers SET name = name || ' (' || id || ')'
WHERE EXISTS (
    SELECT 1 FROM containers AS older
    WHERE older.tenant_id = containers.tenant_id
      AND lower(older.name) = lower(containers.name)
      AND (older.created_at < containers.created_at
           OR (older.created_at = containers.created_at AND older.id < containers.id))
);
CREATE UNIQUE INDEX containers_tenant_lower_name ON containers (tenant_id, lower(name));
