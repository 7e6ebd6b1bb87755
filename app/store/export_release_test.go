package store

import (
	"context"

	"gorm.io/gorm"
)

// ScanOnly returns ctx for reads that scan every row through pgx instead of
// decoding PostgreSQL's raw values, so that a test can compare the two.
func ScanOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, scanOnlyKey{}, true)
}

// FactsOnly returns ctx for reads that never take the day rollup
// (release_days), so that a test can compare the two.
func FactsOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, factsOnlyKey{}, true)
}

// Tx runs fn as the store runs its write transactions (see tx).
func (s *Store) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error { return s.tx(ctx, fn) }
