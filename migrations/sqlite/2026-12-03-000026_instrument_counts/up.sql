-- Each container keeps the number of payment instruments stored in its profiles, as it keeps
-- profile_count, so that the console's home page reads counts instead of counting a million
-- rows. Triggers keep it, so no write path can forget it; every path that adds or removes an
-- instrument already holds the container's lock (vault::profiles::lock), so the update takes
-- no new lock. The expiry index serves "instruments expiring within 30 days".
ALTER TABLE containers ADD COLUMN instrument_count BIGINT NOT NULL DEFAULT 0;
UPDATE containers SET instrument_count = (
    SELECT COUNT(*) FROM instruments i JOIN profiles p ON p.id = i.profile_id
    WHERE p.container_id = containers.id
);
CREATE TRIGGER instruments_count_insert AFTER INSERT ON instruments
BEGIN
    UPDATE containers SET instrument_count = instrument_count + 1
    WHERE id = (SELECT container_id FROM profiles WHERE id = NEW.profile_id);
END;
CREATE TRIGGER instruments_count_delete AFTER DELETE ON instruments
BEGIN
    UPDATE containers SET instrument_count = instrument_count - 1
    WHERE id = (SELECT container_id FROM profiles WHERE id = OLD.profile_id);
END;
CREATE INDEX instruments_expiry ON instruments(exp_year, exp_month);
