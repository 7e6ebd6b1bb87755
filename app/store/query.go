package store

import (
	"database/sql"
	"errors"

	"gorm.io/gorm"
)

// row is a single-row query result with the semantics of *sql.Row. gorm's
// own Row() returns a nil *sql.Row when the statement carries an error, and
// scanning that panics; this wrapper turns every failure into an error.
type row struct {
	db   *gorm.DB
	q    string
	args []any
}

func queryRow(db *gorm.DB, q string, args ...any) row { return row{db: db, q: q, args: args} }

// Scan runs the query and scans its first row; no row gives sql.ErrNoRows.
func (r row) Scan(dest ...any) error {
	rows, err := r.db.Raw(r.q, r.args...).Rows()
	if err != nil {
		return err
	}
	if rows == nil {
		return errors.New("no result set")
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}
