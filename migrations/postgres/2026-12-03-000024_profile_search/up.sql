-- Profile search across every container in scope (issue 13, point 6): a prefix of
-- customerIdentification (case-sensitive), a prefix of the (lowercased) email, and the last
-- four digits of a stored card, each an index range. The prefix ranges compare in byte order
-- (COLLATE "C", as the queries do), whatever the database's collation.
CREATE INDEX profiles_ident_prefix ON profiles((customer_identification COLLATE "C"), id);
CREATE INDEX profiles_container_ident_prefix ON profiles(container_id, (customer_identification COLLATE "C"));
CREATE INDEX profiles_email_prefix ON profiles((email COLLATE "C"), id);
CREATE INDEX profiles_container_email_prefix ON profiles(container_id, (email COLLATE "C"));
CREATE INDEX instruments_last_four ON instruments(last_four, profile_id);
