DROP TABLE audit_log;
DROP TABLE login_throttle;
DROP TABLE users;
DROP TABLE merchants;
DROP TABLE tenants;
