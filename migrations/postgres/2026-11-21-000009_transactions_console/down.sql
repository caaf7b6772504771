DROP INDEX transactions_profile;
DROP INDEX transactions_path_created;
DROP INDEX transactions_merchant_created;
