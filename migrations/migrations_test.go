package migrations_test

import (
	"context"
	"database/sql"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"       // registers "pgx"
	_ "github.com/ncruces/go-sqlite3/driver" // registers "sqlite3"
	"github.com/pressly/goose/v3"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/migrations"
)

// versions lists the goose version numbers in one dialect folder.
func versions(t *testing.T, dir string) []int64 {
	t.Helper()
	entries, err := fs.ReadDir(migrations.FS, dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, e := range entries {
		name := e.Name()
		if path.Ext(name) != ".sql" {
			t.Errorf("%s/%s: not a .sql file", dir, name)
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= 0 {
			t.Errorf("%s/%s: name must be NNNNN_description.sql", dir, name)
			continue
		}
		out = append(out, v)
	}
	return out
}

// TestDialectsHaveSameVersions keeps the two folders in step: a migration
// added for one engine only would leave the other behind at the same version
// number.
func TestDialectsHaveSameVersions(t *testing.T) {
	pg, lite := versions(t, migrations.Postgres), versions(t, migrations.SQLite)
	if len(pg) == 0 {
		t.Fatal("no migrations embedded")
	}
	if !slices.Equal(pg, lite) {
		t.Fatalf("postgres versions %v != sqlite versions %v", pg, lite)
	}
	// Same file names too, so reviewers can diff the pair.
	pgNames, _ := fs.Glob(migrations.FS, migrations.Postgres+"/*.sql")
	liteNames, _ := fs.Glob(migrations.FS, migrations.SQLite+"/*.sql")
	for i := range pgNames {
		if path.Base(pgNames[i]) != path.Base(liteNames[i]) {
			t.Errorf("file names differ: %s vs %s", pgNames[i], liteNames[i])
		}
	}
	for i := 1; i < len(pg); i++ {
		if pg[i] != pg[i-1]+1 {
			t.Errorf("versions not sequential: %v (renumber with goose fix)", pg)
		}
	}
}

// TestUpDownUp applies every migration, rolls all back, and applies them
// again on both engines, which proves every Down undoes its Up.
func TestUpDownUp(t *testing.T) {
	tests := []struct {
		name    string
		dialect goose.Dialect
		dir     string
		open    func(t *testing.T) *sql.DB
	}{
		{"sqlite", goose.DialectSQLite3, migrations.SQLite, func(t *testing.T) *sql.DB {
			db, err := sql.Open("sqlite3", "file:"+dbtest.SQLite(t)+"?_pragma=foreign_keys(on)")
			if err != nil {
				t.Fatal(err)
			}
			return db
		}},
		{"postgres", goose.DialectPostgres, migrations.Postgres, func(t *testing.T) *sql.DB {
			db, err := sql.Open("pgx", dbtest.Postgres(t))
			if err != nil {
				t.Fatal(err)
			}
			return db
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := tt.open(t)
			t.Cleanup(func() { db.Close() })
			fsys, err := fs.Sub(migrations.FS, tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			p, err := goose.NewProvider(tt.dialect, db, fsys)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			want := int64(len(p.ListSources()))
			for step, run := range []func() error{
				func() error { _, err := p.Up(ctx); return err },
				func() error { _, err := p.DownTo(ctx, 0); return err },
				func() error { _, err := p.Up(ctx); return err },
			} {
				if err := run(); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
			}
			if v, err := p.GetDBVersion(ctx); err != nil || v != want {
				t.Fatalf("version after up/down/up = %d, %v; want %d", v, err, want)
			}
		})
	}
}
