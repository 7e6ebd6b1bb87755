package dbtest_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
)

func TestEachRunsBothEngines(t *testing.T) {
	seen := map[string]bool{}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		seen[s.Dialect()] = true
		if err := s.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if !seen[store.DialectSQLite] {
		t.Error("sqlite variant did not run")
	}
	if !seen[store.DialectPostgres] && os.Getenv("CI") == "true" {
		t.Error("postgres variant did not run under CI=true")
	}
}

func TestPostgresSchemaIsFreshAndDropped(t *testing.T) {
	var u string
	t.Run("use", func(t *testing.T) {
		u = dbtest.Postgres(t)
		s := dbtest.PostgresStore(t)
		if s == nil {
			t.Fatal("nil store")
		}
	})
	if u == "" {
		t.Skip("postgres unavailable")
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	schema := parsed.Query().Get("search_path")
	if !strings.HasPrefix(schema, "kl_test_") {
		t.Fatalf("search_path = %q", schema)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("schema %s still exists after its test ended", schema)
	}
}

// stopTB records Skip/Fatal instead of ending the goroutine, so the
// unreachable-server policy can be observed from a test.
type stopTB struct {
	testing.TB
	skipped, failed bool
}

type stopped struct{}

func (s *stopTB) Helper()           {}
func (s *stopTB) Skip(args ...any)  { s.skipped = true; panic(stopped{}) }
func (s *stopTB) Fatal(args ...any) { s.failed = true; panic(stopped{}) }

func TestUnreachablePostgresPolicy(t *testing.T) {
	tests := []struct {
		ci                    string
		wantSkip, wantFailure bool
	}{
		{"true", false, true},
		{"", true, false},
		{"false", true, false},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv(dbtest.EnvPostgres, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
			t.Setenv("CI", tt.ci)
			tb := &stopTB{TB: t}
			func() {
				defer func() {
					if r := recover(); r != nil {
						if _, ok := r.(stopped); !ok {
							panic(r)
						}
					}
				}()
				dbtest.Postgres(tb)
			}()
			if tb.skipped != tt.wantSkip || tb.failed != tt.wantFailure {
				t.Fatalf("skipped=%v failed=%v, want skipped=%v failed=%v", tb.skipped, tb.failed, tt.wantSkip, tt.wantFailure)
			}
		})
	}
}
