package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/keyline/keyline/migrations"
)

// Migrate brings the schema up to the newest embedded migration. On
// PostgreSQL it holds a session advisory lock while doing so, so replicas
// starting together can all call it: one migrates, the others wait and then
// find nothing to do.
func (s *Store) Migrate(ctx context.Context) error {
	p, err := s.migrationProvider(ctx)
	if err != nil {
		return err
	}
	// No p.Close(): it would close the store's *sql.DB, which goose does not own.
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for _, r := range results {
		s.log.Info("store: applied migration", "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// migrationProvider builds a goose provider for the store's dialect over the
// store's own pool.
func (s *Store) migrationProvider(ctx context.Context) (*goose.Provider, error) {
	dir, dialect := migrations.SQLite, goose.DialectSQLite3
	var opts []goose.ProviderOption
	if s.dialect == DialectPostgres {
		dir, dialect = migrations.Postgres, goose.DialectPostgres
		id, err := s.migrationLockID(ctx)
		if err != nil {
			return nil, err
		}
		// Poll every second rather than goose's default five: migrations
		// here take milliseconds, so waiting replicas should notice soon.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(id), lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("store: migrate: session locker: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	fsys, err := fs.Sub(migrations.FS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	p, err := goose.NewProvider(dialect, s.sqlDB, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: migrate: new provider: %w", err)
	}
	return p, nil
}

// migrationLockID derives the advisory lock id from the database and schema
// being migrated. Advisory locks are per database, not per schema, so a fixed
// id would make unrelated schemas (test schemas, or two deployments sharing a
// server) wait for each other.
func (s *Store) migrationLockID(ctx context.Context) (int64, error) {
	var target string
	row := s.sqlDB.QueryRowContext(ctx, "SELECT current_database() || '.' || COALESCE(current_schema(), '')")
	if err := row.Scan(&target); err != nil {
		return 0, fmt.Errorf("store: migrate: current schema: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("keyline-migrate:" + target))
	return int64(h.Sum64()), nil
}
