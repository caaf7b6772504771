DROP TABLE callback_attempts;
DROP TABLE callbacks;
