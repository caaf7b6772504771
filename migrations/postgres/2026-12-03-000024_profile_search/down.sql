DROP INDEX instruments_last_four;
DROP INDEX profiles_container_email_prefix;
DROP INDEX profiles_email_prefix;
DROP INDEX profiles_container_ident_prefix;
DROP INDEX profiles_ident_prefix;
