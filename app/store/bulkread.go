package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// eachRow runs q (written with "?" placeholders) and calls fn for every row.
// It is for the reads that return tens of thousands of rows, such as the
// release reports'. On PostgreSQL it runs the query on the pool's pgx
// connection directly: database/sql boxes every value into a driver.Value
// and converts it again on Scan, which cost more than the query itself for
// a busy quarter's rows. SQLite goes through database/sql as usual. fn
// must not keep r beyond the call.
func (s *Store) eachRow(ctx context.Context, q string, args []any, fn func(r rowScanner) error) error {
	if s.dialect != DialectPostgres {
		rows, err := s.sqlDB.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		return scanAll(rows, fn)
	}
	return s.withPgx(ctx, func(pc *pgx.Conn) error {
		// An unnamed statement, described and then run: PostgreSQL plans
		// it for these arguments. A cached prepared statement would move
		// to a generic plan after five runs, the same for a week and for
		// a year, and the release reads' best plans differ between the two.
		rows, err := pc.Query(ctx, dollarPlaceholders(q),
			append([]any{pgx.QueryExecModeDescribeExec}, args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := fn(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// withPgx runs fn on one of the pool's PostgreSQL connections as pgx sees
// it, for the few paths where database/sql's conversions cost more than
// the query. An error fn returns is returned as it is; driver.ErrBadConn
// also makes database/sql drop the connection.
func (s *Store) withPgx(ctx context.Context, fn func(pc *pgx.Conn) error) error {
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		sc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: unexpected PostgreSQL driver connection %T", driverConn)
		}
		return fn(sc.Conn())
	})
}

// appendRow appends v to rows, doubling the capacity when it runs out.
// append grows a large slice by about a quarter at a time, so a read of a
// hundred thousand rows would copy them several times over.
func appendRow[T any](rows []T, v T) []T {
	if len(rows) == cap(rows) {
		rows = slices.Grow(rows, max(256, len(rows)))
	}
	return append(rows, v)
}
