-- PostgreSQL only: the keyline_abort function of the PostgreSQL migration
-- serves its one-statement push write, which SQLite does not use. This
-- migration keeps the version numbers of both dialects in step.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
