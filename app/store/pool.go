package store

import "database/sql"

// SQLDB returns the store's connection pool, for instrumentation only (the
// Prometheus pool-statistics collector reads its Stats). Queries go through
// the Store's methods, never through this handle.
func (s *Store) SQLDB() *sql.DB { return s.sqlDB }
