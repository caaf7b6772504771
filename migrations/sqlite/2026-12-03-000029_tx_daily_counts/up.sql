-- Transactions per merchant, UTC day and status, kept by triggers (so no write path can forget
-- them), for the console's home page: it read every transaction of the last 30 days of its
-- scope on each view (91 views/s at 64 connections after the benchmark's 20 000 payments,
-- bench/results/2026-12-03-before), and now reads at most 30 days x 3 statuses per merchant.
-- `shard` spreads the rows of one merchant, day and status: on PostgreSQL concurrent payments of
-- one merchant would otherwise all wait for the same counter row until they commit. SQLite has
-- one writer at a time and always writes shard 0. Readers sum the shards.
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
    SELECT merchant_id, tenant_path, substr(CAST(created_at AS TEXT), 1, 10), status, 0, COUNT(*)
    FROM transactions GROUP BY 1, 2, 3, 4;
CREATE TRIGGER tx_daily_counts_insert AFTER INSERT ON transactions
BEGIN
    INSERT INTO tx_daily_counts (merchant_id, tenant_path, tx_day, status, shard, n)
    VALUES (NEW.merchant_id, NEW.tenant_path, substr(CAST(NEW.created_at AS TEXT), 1, 10),
            NEW.status, 0, 1)
    ON CONFLICT (merchant_id, tx_day, status, tenant_path, shard) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER tx_daily_counts_delete AFTER DELETE ON transactions
BEGIN
    UPDATE tx_daily_counts SET n = n - 1
    WHERE merchant_id = OLD.merchant_id AND tenant_path = OLD.tenant_path
      AND tx_day = substr(CAST(OLD.created_at AS TEXT), 1, 10) AND status = OLD.status
      AND shard = 0;
END;
CREATE TRIGGER tx_daily_counts_update
AFTER UPDATE OF status, created_at, merchant_id, tenant_path ON transactions
WHEN OLD.status IS NOT NEW.status OR OLD.created_at IS NOT NEW.created_at
  OR OLD.merchant_id IS NOT NEW.merchant_id OR OLD.tenant_path IS NOT NEW.tenant_path
BEGIN
    UPDATE tx_daily_counts SET n = n - 1
    WHERE merchant_id = OLD.merchant_id AND tenant_path = OLD.tenant_path
      AND tx_day = substr(CAST(OLD.created_at AS TEXT), 1, 10) AND status = OLD.status
      AND shard = 0;
    INSERT INTO tx_daily_counts (merchant_id, tenant_path, tx_day, status, shard, n)
    VALUES (NEW.merchant_id, NEW.tenant_path, substr(CAST(NEW.created_at AS TEXT), 1, 10),
            NEW.status, 0, 1)
    ON CONFLICT (merchant_id, tx_day, status, tenant_path, shard) DO UPDATE SET n = n + 1;
END;
