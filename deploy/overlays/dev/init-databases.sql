-- Each service owns its database: POSTGRES_DB creates "orders"; the payment service and
-- Keycloak get their own.
CREATE DATABASE payments OWNER shop;
CREATE DATABASE keycloak OWNER shop;
