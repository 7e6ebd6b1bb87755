// Package migrations holds Keyline's database schema as goose SQL migrations,
// one folder per dialect. Both folders carry the same version numbers so that
// a given version means the same schema on either engine.
//
// Conventions for new files: name them NNNNN_what.sql in both folders; keep
// tenant_id first in every site-data primary key; never give time columns SQL
// defaults, because the store writes every timestamp itself in one format
// (on SQLite: text "2006-01-02T15:04:05.000000Z", which sorts in time order).
package migrations

import "embed"

// Folder names inside FS, one per dialect.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// FS holds postgres/*.sql and sqlite/*.sql. Use fs.Sub(FS, Postgres) or
// fs.Sub(FS, SQLite) as the goose provider's file system.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
