-- Payment sessions used to keep the whole API request body, unknown fields included (a stray
-- card number, customer data). Sessions now keep only the known fields finishing needs, and
-- nothing once they end: forget what ended sessions still hold. Open sessions keep theirs
-- until they end (the older whole body is read the same way).
UPDATE payment_sessions SET request = '' WHERE status <> 'open';
