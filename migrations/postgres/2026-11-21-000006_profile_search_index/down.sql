DROP INDEX profiles_container_email;
CREATE INDEX profiles_container_email ON profiles(container_id, email);
