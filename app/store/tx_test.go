package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/keyline/keyline/app/dbtest"
)

// TestTxRunsAgainAfterDeadlock has two write transactions lock the same
// two rows in opposite orders, as two deliveries moving release facts
// between the same two days' rollup rows can. PostgreSQL ends one of them
// to break the deadlock; the store runs it again, and both writes land.
// SQLite's writers queue (BEGIN IMMEDIATE) and never deadlock so.
func TestTxRunsAgainAfterDeadlock(t *testing.T) {
	s := dbtest.PostgresStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.Tx(ctx, func(tx *gorm.DB) error {
		return tx.Exec(`CREATE TABLE deadlock_probe (id int PRIMARY KEY, n int NOT NULL);
			INSERT INTO deadlock_probe VALUES (1, 0), (2, 0)`).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		attempts atomic.Int32
		first    sync.WaitGroup // both hold their first row
		wg       sync.WaitGroup
		errs     = make([]error, 2)
	)
	first.Add(2)
	for i, order := range [][2]int{{1, 2}, {2, 1}} {
		wg.Go(func() {
			once := sync.OnceFunc(first.Done)
			errs[i] = s.Tx(ctx, func(tx *gorm.DB) error {
				attempts.Add(1)
				if err := tx.Exec(`UPDATE deadlock_probe SET n = n + 1 WHERE id = ?`, order[0]).Error; err != nil {
					return err
				}
				once()
				first.Wait()
				return tx.Exec(`UPDATE deadlock_probe SET n = n + 1 WHERE id = ?`, order[1]).Error
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	// At least one transaction was ended by the deadlock and run again.
	// Its second run may deadlock once more: the waiter on its first row
	// wakes when the first run ends, and can find the row taken by the
	// second run before it. Neither runs more than three times (txAttempts).
	if got := attempts.Load(); got < 3 || got > 6 {
		t.Errorf("%d attempts, want 3 to 6: a transaction ended by the deadlock and run again", got)
	}
	var n []int
	if err := s.Tx(ctx, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT n FROM deadlock_probe ORDER BY id`).Scan(&n).Error
	}); err != nil {
		t.Fatal(err)
	}
	if len(n) != 2 || n[0] != 2 || n[1] != 2 {
		t.Errorf("counts %v, want [2 2]: each transaction's two updates once", n)
	}
}
