//go:build unix

package dbtest_test

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyline/keyline/app/dbtest"
)

// TestPrivatePostgres stops and starts a private server both ways and checks
// that it refuses connections while down, keeps its data across restarts,
// and is not the shared server.
func TestPrivatePostgres(t *testing.T) {
	p := dbtest.PrivatePostgres(t)
	u, err := url.Parse(p.URL())
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() != "127.0.0.1" || u.Port() == "5432" {
		t.Fatalf("URL %s: want 127.0.0.1 on a port of its own", p.URL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	connect := func() *pgx.Conn {
		t.Helper()
		c, err := pgx.Connect(ctx, p.URL())
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	rows := func(c *pgx.Conn) []int {
		t.Helper()
		r, err := c.Query(ctx, "SELECT n FROM kept ORDER BY n")
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(r, pgx.RowTo[int])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	c := connect()
	if _, err := c.Exec(ctx, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	want := []int{1}
	for i, mode := range []dbtest.StopMode{dbtest.StopFast, dbtest.StopImmediate} {
		if err := p.Stop(mode); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "SELECT 1"); err == nil {
			t.Errorf("stop -m %s: an open session still answers", mode)
		}
		if c2, err := pgx.Connect(ctx, p.URL()); err == nil {
			c2.Close(ctx)
			t.Errorf("stop -m %s: a new connection succeeded", mode)
		}
		if err := p.Stop(mode); err != nil {
			t.Errorf("stopping a stopped server: %v", err)
		}
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		c = connect()
		if got := rows(c); !slices.Equal(got, want) {
			t.Fatalf("after stop -m %s: rows %v, want %v", mode, got, want)
		}
		if _, err := c.Exec(ctx, "INSERT INTO kept VALUES ($1)", i+2); err != nil {
			t.Fatal(err)
		}
		want = append(want, i+2)
	}
}
