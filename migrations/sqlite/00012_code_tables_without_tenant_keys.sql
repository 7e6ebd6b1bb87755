-- PostgreSQL only: its migration drops the foreign keys to tenants of the
-- tables a push writes, whose checks cost it CPU on every push. SQLite can
-- drop a foreign key only by rebuilding the table, and its checks are cheap
-- beside its single writer, so here the keys stay and still cascade.
-- store.DeleteTenant deletes those tables' rows itself on both engines.
-- This migration keeps the version numbers of both dialects in step.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
