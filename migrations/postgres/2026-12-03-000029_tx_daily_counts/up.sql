-- Transactions per merchant, UTC day and status, kept by triggers (so no write path can forget
-- them), for the console's home page: it read every transaction of the last 30 days of its
-- scope on each view (73 views/s at 64 connections after the benchmark's payments,
-- bench/results/2026-12-03-before), and now reads at most 30 days x 3 statuses per merchant
-- and shard. `shard` spreads the rows of one merchant, day and status over 16 rows, chosen by
-- the server process (backend) that writes: concurrent payments of one merchant would
-- otherwise all wait for one counter row until they commit. Readers sum the shards.
CREATE TABLE tx_daily_counts (
    merchant_id TEXT NOT NULL,
    tenant_path TEXT NOT NULL,
    tx_day TEXT NOT NULL,
    status TEXT NOT NULL,
    shard INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, tx_day, status, tenant_path, shard)
);
CREATE INDEX tx_daily_counts_path ON tx_daily_counts (tenant_path, tx_day);
INSERT INTO tx_daily_counts (merchant_id, tenant_path, tx_day, status, shard, n)
    SELECT merchant_id, tenant_path, to_char(created_at, 'YYYY-MM-DD'), status, 0, COUNT(*)
    FROM transactions GROUP BY 1, 2, 3, 4;
CREATE FUNCTION coffer_tx_daily_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s INTEGER := pg_backend_pid() % 16;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        -- Any shard of the old key will do: the sum is what counts.
        UPDATE tx_daily_counts SET n = n - 1
        WHERE (merchant_id, tx_day, status, tenant_path, shard) = (
            SELECT merchant_id, tx_day, status, tenant_path, shard FROM tx_daily_counts
            WHERE merchant_id = OLD.merchant_id AND tenant_path = OLD.tenant_path
              AND tx_day = to_char(OLD.created_at, 'YYYY-MM-DD') AND status = OLD.status
              AND n > 0
            ORDER BY (shard = s) DESC, shard LIMIT 1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO tx_daily_counts (merchant_id, tenant_path, tx_day, status, shard, n)
        VALUES (NEW.merchant_id, NEW.tenant_path, to_char(NEW.created_at, 'YYYY-MM-DD'),
                NEW.status, s, 1)
        ON CONFLICT (merchant_id, tx_day, status, tenant_path, shard)
        DO UPDATE SET n = tx_daily_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER tx_daily_counts_insert AFTER INSERT OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION coffer_tx_daily_count();
CREATE TRIGGER tx_daily_counts_update
    AFTER UPDATE OF status, created_at, merchant_id, tenant_path ON transactions
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.created_at IS DISTINCT FROM NEW.created_at
          OR OLD.merchant_id IS DISTINCT FROM NEW.merchant_id
          OR OLD.tenant_path IS DISTINCT FROM NEW.tenant_path)
    EXECUTE FUNCTION coffer_tx_daily_count();
