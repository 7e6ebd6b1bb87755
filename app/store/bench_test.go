package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
)

// BenchmarkSQLitePool measures a request-like mix (4 reads : 1 write) from
// parallel goroutines for several SQLite pool sizes; it is the evidence
// behind sqliteMaxConns.
func BenchmarkSQLitePool(b *testing.B) {
	for _, n := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			ctx := context.Background()
			s, err := store.OpenSQLitePool(ctx, dbtest.SQLite(b), dbtest.Sealer(b), nil, n)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			tn, err := s.UpsertTenant(ctx, install("acme"))
			if err != nil {
				b.Fatal(err)
			}
			for i := range 100 {
				if err := s.UpsertJiraIssue(ctx, tn, issue(fmt.Sprint(i), fmt.Sprintf("KL-%d", i), oddTime)); err != nil {
					b.Fatal(err)
				}
			}
			var seq atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1)
					key := fmt.Sprintf("KL-%d", i%100)
					var err error
					switch i % 5 {
					case 0:
						err = s.AddIssueLink(ctx, tn, key, "commit", fmt.Sprint(i))
					case 1, 2:
						_, err = s.JiraIssueByKey(ctx, tn, key)
					case 3:
						_, err = s.CountIssueLinks(ctx, tn, key)
					case 4:
						_, err = s.TenantByClientKey(ctx, tn.AppKey, tn.ClientKey)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
