-- PostgreSQL only: its migration adds release_days, the per-day rollup of
-- lead and cycle times, with the triggers that keep it in step with the
-- facts. On SQLite the release reads read the facts themselves: an
-- embedded site is far smaller than the sites the rollup is for.
-- This migration keeps the version numbers of both dialects in step.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
