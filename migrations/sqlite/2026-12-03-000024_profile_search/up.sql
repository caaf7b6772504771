-- Profile search across every container in scope (issue 13, point 6): a prefix of
-- customerIdentification (case-sensitive, BINARY order = byte order), a prefix of the
-- (lowercased) email, and the last four digits of a stored card, each an index range.
CREATE INDEX profiles_ident_prefix ON profiles(customer_identification, id);
CREATE INDEX profiles_email_prefix ON profiles(email, id);
CREATE INDEX instruments_last_four ON instruments(last_four, profile_id);
