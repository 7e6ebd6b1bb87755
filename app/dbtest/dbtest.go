// Package dbtest runs store-backed tests against both engines: an SQLite file
// in a temporary directory and a fresh schema on a PostgreSQL server.
//
// PostgreSQL comes from KEYLINE_TEST_POSTGRES (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable). When it cannot be
// reached the PostgreSQL variant is skipped with the reason, except when
// CI=true, where that is a failure: CI must not silently test one engine.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyline/keyline/app/secret"
	"github.com/keyline/keyline/app/store"
)

// EnvPostgres names the variable holding the PostgreSQL server URL for tests.
const EnvPostgres = "KEYLINE_TEST_POSTGRES"

// DefaultPostgres is used when EnvPostgres is unset.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

const setupTimeout = 10 * time.Second

// Each runs fn as subtest "sqlite" and subtest "postgres", each with its own
// empty, migrated database.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLiteStore(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, PostgresStore(t)) })
}

// Sealer returns a sealer with a random key.
func Sealer(t testing.TB) *secret.Sealer {
	t.Helper()
	key := make([]byte, secret.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := secret.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// SQLite returns the path of a database file that does not exist yet, in a
// directory removed after the test.
func SQLite(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "keyline.db")
}

// SQLiteStore opens and migrates a store on a new SQLite file; it is closed
// after the test.
func SQLiteStore(t testing.TB) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s, err := store.OpenSQLite(ctx, SQLite(t), Sealer(t), nil)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return migrated(t, ctx, s)
}

// PostgresStore opens and migrates a store on a new PostgreSQL schema; it is
// closed, and the schema dropped, after the test.
func PostgresStore(t testing.TB) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	s, err := store.OpenPostgres(ctx, Postgres(t), Sealer(t), nil)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return migrated(t, ctx, s)
}

func migrated(t testing.TB, ctx context.Context, s *store.Store) *store.Store {
	t.Helper()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("dbtest: %v", err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return s
}

// Postgres creates an empty schema with a random name and returns a URL whose
// connections use it (search_path). Two stores opened on the URL share the
// schema, which is how tests exercise cross-replica behaviour. The schema is
// dropped after the test; close stores on it first (t.Cleanup order does
// that for stores opened after this call).
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		base = DefaultPostgres
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		unreachable(t, err)
	}
	defer conn.Close(context.Background())

	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "kl_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("dbtest: create schema: %v", err)
	}
	t.Cleanup(func() { dropSchema(t, base, schema) })

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("dbtest: parse %s: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func unreachable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("dbtest: PostgreSQL unreachable (set %s): %v", EnvPostgres, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func dropSchema(t testing.TB, base, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Errorf("dbtest: drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		t.Errorf("dbtest: drop schema %s: %v", schema, err)
	}
}
