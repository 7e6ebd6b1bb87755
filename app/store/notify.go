package store

import (
	"context"
	"errors"

	"gorm.io/gorm"
)

// tenantChannel is the PostgreSQL NOTIFY channel for tenant changes; the
// payload is "<app key> <client key>" (app keys contain no spaces).
const tenantChannel = "keyline_tenants"

// errNoRow, returned by a writeTenant callback, rolls the transaction back so
// that a write which matched nothing announces nothing.
var errNoRow = errors.New("store: no row matched")

// writeTenant runs a tenant write. On PostgreSQL it runs in a transaction
// that also queues a notification, which the server delivers only if and
// when the write commits, so no replica evicts its cache too early or misses
// the change. On SQLite there is one process and nothing to notify.
func (s *Store) writeTenant(ctx context.Context, appKey, clientKey string, fn func(tx *gorm.DB) error) error {
	if s.dialect != DialectPostgres {
		return fn(s.db.WithContext(ctx))
	}
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Exec(`SELECT pg_notify(?, ?)`, tenantChannel, appKey+" "+clientKey).Error
	})
}
