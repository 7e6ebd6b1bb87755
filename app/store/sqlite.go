package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/ncruces/go-sqlite3/gormlite"
	"gorm.io/gorm"

	"github.com/keyline/keyline/app/secret"
)

// sqlitePragmas are applied by the ncruces driver to every new connection.
// busy_timeout must come first so the others wait instead of failing while
// another process holds the lock; WAL lets readers run beside the writer;
// synchronous=normal is durable across application crashes in WAL mode;
// foreign keys are off by default in SQLite. _txlock=immediate makes every
// transaction take the write lock at BEGIN, so two writers queue on the busy
// timeout instead of deadlocking when both try to upgrade a read lock.
const sqlitePragmas = "_pragma=busy_timeout(10000)" +
	"&_pragma=journal_mode(wal)" +
	"&_pragma=synchronous(normal)" +
	"&_pragma=foreign_keys(on)" +
	"&_txlock=immediate"

// sqliteMaxConns bounds the SQLite pool. Each ncruces connection is a Wasm
// sandbox with its own memory, so the pool stays small; more than one lets
// reads proceed while a write transaction is open (WAL), and writers queue on
// the busy timeout. BenchmarkSQLitePool compares pool sizes.
const sqliteMaxConns = 4

// OpenSQLite opens (creating if needed) the SQLite database file at path.
// It applies no migrations; call Migrate.
func OpenSQLite(ctx context.Context, path string, sealer *secret.Sealer, logger *slog.Logger) (*Store, error) {
	return openSQLite(ctx, path, sealer, logger, sqliteMaxConns)
}

func openSQLite(ctx context.Context, path string, sealer *secret.Sealer, logger *slog.Logger, maxConns int) (*Store, error) {
	if path == "" || path == ":memory:" {
		// An in-memory database is per connection, so a pool would see
		// several unrelated databases.
		return nil, errors.New("store: open sqlite: a file path is required")
	}
	if sealer == nil {
		return nil, errors.New("store: open sqlite: nil sealer")
	}
	logger = loggerOrDiscard(logger)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: open sqlite: create directory: %w", err)
	}
	db, err := gorm.Open(gormlite.Open(sqliteDSN(path)), gormConfig(logger))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	s, err := newStore(db, DialectSQLite, sealer, logger)
	if err != nil {
		return nil, err
	}
	s.sqlDB.SetMaxOpenConns(maxConns)
	s.sqlDB.SetMaxIdleConns(maxConns)
	// Connections are expensive to create (a Wasm instance each) and a local
	// file has no server to drop them, so keep them.
	s.sqlDB.SetConnMaxLifetime(0)
	s.sqlDB.SetConnMaxIdleTime(0)
	if err := s.Ping(ctx); err != nil {
		s.sqlDB.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	return s, nil
}

// sqliteDSN builds a file: URI so that characters such as ? or # in the path
// are escaped rather than read as URI syntax.
func sqliteDSN(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + sqlitePragmas
}
