DROP INDEX instruments_last_four;
DROP INDEX profiles_email_prefix;
DROP INDEX profiles_ident_prefix;
