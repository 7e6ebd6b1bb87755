package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	neturl "net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/keyline/keyline/app/secret"
)

// Pool limits for PostgreSQL. Keyline's queries are short; a modest pool per
// replica keeps the total under a small server's max_connections while
// leaving room for several replicas and the tenant watcher's own connection.
// Idle connections are kept up to the pool size: under bursty webhook load a
// smaller idle limit closes and reopens sessions by the hundred, each a
// fork and a login on the server, and loses its prepared statements.
const (
	pgMaxOpenConns    = 16
	pgMaxIdleConns    = pgMaxOpenConns
	pgConnMaxLifetime = 30 * time.Minute
	pgConnMaxIdleTime = 5 * time.Minute
)

// OpenPostgres connects to the PostgreSQL database at url (postgres:// or
// postgresql://, libpq-style parameters such as sslmode and search_path
// allowed). It applies no migrations; call Migrate.
func OpenPostgres(ctx context.Context, url string, sealer *secret.Sealer, logger *slog.Logger) (*Store, error) {
	if sealer == nil {
		return nil, errors.New("store: open postgres: nil sealer")
	}
	// Parse up front so a malformed URL fails here with pgx's message (which
	// redacts the password) rather than at the first query.
	if _, err := pgx.ParseConfig(url); err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	logger = loggerOrDiscard(logger)
	db, err := gorm.Open(postgres.New(postgres.Config{DSN: withSessionDefaults(url)}), gormConfig(logger))
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	s, err := newStore(db, DialectPostgres, sealer, logger)
	if err != nil {
		return nil, err
	}
	s.pgURL = url
	s.sqlDB.SetMaxOpenConns(pgMaxOpenConns)
	s.sqlDB.SetMaxIdleConns(pgMaxIdleConns)
	s.sqlDB.SetConnMaxLifetime(pgConnMaxLifetime)
	s.sqlDB.SetConnMaxIdleTime(pgConnMaxIdleTime)
	if err := s.Ping(ctx); err != nil {
		s.sqlDB.Close()
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	return s, nil
}

// withSessionDefaults adds Keyline's session settings to a URL-form DSN
// unless the operator set them there. jit=off: the release reports' plans
// cost enough to cross jit_above_cost, and compiling them added 7–17 ms to
// queries of under 100 ms that never run long enough to repay it.
// Keyword-form DSNs are left as they are.
func withSessionDefaults(dsn string) string {
	u, err := neturl.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn
	}
	q := u.Query()
	if q.Has("jit") {
		return dsn
	}
	q.Set("jit", "off")
	u.RawQuery = q.Encode()
	return u.String()
}
