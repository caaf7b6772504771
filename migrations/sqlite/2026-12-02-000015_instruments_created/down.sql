DROP INDEX instruments_created;
