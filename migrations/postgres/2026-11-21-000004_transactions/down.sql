DROP TABLE card_tokens;
DROP TABLE transactions;
