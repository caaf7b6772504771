DROP TABLE payment_sessions;
