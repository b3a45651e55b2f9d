-- Each service owns its database: POSTGRES_DB creates "orders"; the payment service gets its own.
CREATE DATABASE payments OWNER shop;
