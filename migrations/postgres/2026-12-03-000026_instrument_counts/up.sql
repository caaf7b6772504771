-- Each container keeps the number of payment instruments stored in its profiles, as it keeps
-- profile_count, so that the console's home page reads counts instead of counting a million
-- rows. Triggers keep it, so no write path can forget it; every path that adds or removes an
-- instrument already holds the container's row lock (vault::profiles::lock), so the update takes
-- no new lock. The expiry index serves "instruments expiring within 30 days".
ALTER TABLE containers ADD COLUMN instrument_count BIGINT NOT NULL DEFAULT 0;
UPDATE containers SET instrument_count = (
    SELECT COUNT(*) FROM instruments i JOIN profiles p ON p.id = i.profile_id
    WHERE p.container_id = containers.id
);
CREATE FUNCTION coffer_count_instruments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE containers SET instrument_count = instrument_count + 1
        WHERE id = (SELECT container_id FROM profiles WHERE id = NEW.profile_id);
    ELSE
        UPDATE containers SET instrument_count = instrument_count - 1
        WHERE id = (SELECT container_id FROM profiles WHERE id = OLD.profile_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER instruments_count AFTER INSERT OR DELETE ON instruments
    FOR EACH ROW EXECUTE FUNCTION coffer_count_instruments();
CREATE INDEX instruments_expiry ON instruments(exp_year, exp_month);
