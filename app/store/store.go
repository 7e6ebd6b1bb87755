// Package store is Keyline's persistence: tenants and their site data, on an
// embedded SQLite file or on PostgreSQL, through one set of methods.
//
// Every method that touches site data takes the tenant first and filters on
// its id, so one site can never read or change another site's rows. Tenant
// shared secrets are sealed with a secret.Sealer on the way in and opened on
// the way out; the plaintext exists only in memory.
//
// SQL is written by hand, in the subset both engines understand (ON CONFLICT,
// RETURNING, ? placeholders that gorm rewrites per dialect), so that each
// query's tenant filter is visible where it is written.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/keyline/keyline/app/secret"
	"github.com/keyline/keyline/app/tenant"
)

// Dialect names returned by Store.Dialect.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// ErrNotFound is returned by site-data lookups that match no row. Tenant
// lookups return tenant.ErrNotFound instead, which the tenant cache and the
// Connect verifier understand.
var ErrNotFound = errors.New("store: not found")

// errNoTenant guards the tenant-first methods against a nil or unsaved tenant,
// which would otherwise match tenant_id = 0 and fail silently.
var errNoTenant = errors.New("store: no tenant (nil or zero id)")

// Store is a handle on Keyline's database. It is safe for concurrent use.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect string
	sealer  *secret.Sealer
	log     *slog.Logger
	// pgURL is kept for the tenant watcher's dedicated connection; empty on SQLite.
	pgURL string
	now   func() time.Time
	// sources caches SourceByToken answers; see sourcecache.go.
	sources sourceCache
	// changes versions each site's data for caches; see changes.go.
	changes *dataChanges
	// onListen, when set by tests, receives the backend pid of each new
	// watcher connection so a test can kill it and observe the reconnect.
	onListen func(pid uint32)
}

func newStore(db *gorm.DB, dialect string, sealer *secret.Sealer, logger *slog.Logger) (*Store, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("store: sql handle: %w", err)
	}
	return &Store{
		db:      db,
		sqlDB:   sqlDB,
		dialect: dialect,
		sealer:  sealer,
		log:     logger,
		now:     time.Now,
		changes: newDataChanges(),
	}, nil
}

func gormConfig(logger *slog.Logger) *gorm.Config {
	return &gorm.Config{
		Logger: newGormLogger(logger),
		// Every write here is one statement or an explicit transaction; gorm's
		// implicit per-write transaction would only add round trips.
		SkipDefaultTransaction: true,
		// Ping ourselves, with the caller's context.
		DisableAutomaticPing: true,
	}
}

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Dialect reports DialectPostgres or DialectSQLite.
func (s *Store) Dialect() string { return s.dialect }

// Ping checks that the database answers; the readiness probe uses it.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close releases the connection pool. On SQLite it first runs
// PRAGMA optimize, which SQLite recommends before closing a connection that
// ran queries, to keep the planner's statistics fresh.
func (s *Store) Close() error {
	if s.dialect == DialectSQLite {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := s.sqlDB.ExecContext(ctx, "PRAGMA optimize")
		cancel()
		if err != nil {
			s.log.Warn("store: pragma optimize on close", "err", err)
		}
	}
	if err := s.sqlDB.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// tx runs fn in a transaction. On SQLite it begins IMMEDIATE (see the DSN),
// so two writers queue on the busy timeout instead of deadlocking on a lock
// upgrade. On PostgreSQL a transaction that PostgreSQL chose to end to
// break a deadlock runs again, up to txAttempts times in all: two
// deliveries that move release facts between the same two days' rollup
// rows (migration 00013) can lock them in opposite orders. fn must
// therefore start from scratch each time it is called.
func (s *Store) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	var err error
	for range txAttempts {
		err = s.db.WithContext(ctx).Transaction(fn)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != sqlStateDeadlock || ctx.Err() != nil {
			return err
		}
		s.log.Warn("store: transaction ended to break a deadlock; running it again")
	}
	return err
}

// txAttempts bounds how often tx runs a transaction PostgreSQL ended to
// break a deadlock.
const txAttempts = 3

// sqlStateDeadlock is PostgreSQL's deadlock_detected.
const sqlStateDeadlock = "40P01"

func checkTenant(t *tenant.Tenant) error {
	if t == nil || t.ID <= 0 {
		return errNoTenant
	}
	return nil
}
