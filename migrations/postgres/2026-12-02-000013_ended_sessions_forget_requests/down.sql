-- Nothing to restore: the requests of ended sessions are gone for good.
SELECT 1;
