package store

import "context"

// ScanOnly returns ctx for reads that scan every row through pgx instead of
// decoding PostgreSQL's raw values, so that a test can compare the two.
func ScanOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, scanOnlyKey{}, true)
}
