package store

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// dataChannel is the PostgreSQL NOTIFY channel on which a replica announces
// that sites' DevOps data changed; the payload is a comma-separated list of
// tenant ids.
const dataChannel = "keyline_data"

// Announcement timing. Changes are announced after they commit, gathered for
// announceGather so that a burst of deliveries costs one NOTIFY, not one per
// delivery: a notifying transaction holds a database-wide lock from its
// commit until it ends, which would serialise every ingestion commit.
const (
	announceGather  = 20 * time.Millisecond
	announceBackoff = time.Second
	// announceMaxPayload keeps a notification under PostgreSQL's 8,000-byte
	// payload limit.
	announceMaxPayload = 7900
)

// DataVersion identifies what one replica knows of a site's DevOps data:
// entities, their issue links and Jira's issue facts. It changes after
// every write to that data on this replica, when another replica announces
// one, and for every site at once when announcements may have been missed.
// Caches of what was read from the site's data compare versions taken
// before the read; equal versions mean no change was seen in between.
type DataVersion struct {
	epoch, n uint64
}

// dataChanges counts the writes to each site's data and, on PostgreSQL,
// queues them for announcement to the other replicas.
type dataChanges struct {
	// epoch changes when announcements may have been lost, which makes
	// every earlier version stale.
	epoch atomic.Uint64
	// counts maps tenant id to *atomic.Uint64.
	counts sync.Map
	// shared is set once the watcher has started: from then on other
	// replicas' writes count, and versions can be trusted only while
	// listening is set.
	shared    atomic.Bool
	listening atomic.Bool

	mu      sync.Mutex
	pending map[int64]struct{}
	wake    chan struct{}
}

func newDataChanges() *dataChanges {
	return &dataChanges{pending: map[int64]struct{}{}, wake: make(chan struct{}, 1)}
}

func (d *dataChanges) count(tenantID int64) *atomic.Uint64 {
	if c, ok := d.counts.Load(tenantID); ok {
		return c.(*atomic.Uint64)
	}
	c, _ := d.counts.LoadOrStore(tenantID, new(atomic.Uint64))
	return c.(*atomic.Uint64)
}

// DataVersion reports the version of the site's data as this replica knows
// it. ok is false while this replica cannot know of other replicas' writes
// (its watcher is reconnecting); nothing read then may be cached.
func (s *Store) DataVersion(tenantID int64) (v DataVersion, ok bool) {
	d := s.changes
	if d.shared.Load() && !d.listening.Load() {
		return DataVersion{}, false
	}
	return DataVersion{epoch: d.epoch.Load(), n: d.count(tenantID).Load()}, true
}

// changed records that a write to the site's data has ended. It must run
// after the write commits (or fails): a reader that took the new version
// could otherwise still read the old rows and cache them as current.
// Write methods call it deferred, so a write whose outcome is unknown also
// counts.
func (s *Store) changed(tenantID int64) {
	s.changes.count(tenantID).Add(1)
	if s.dialect != DialectPostgres {
		return
	}
	d := s.changes
	d.mu.Lock()
	d.pending[tenantID] = struct{}{}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// changedElsewhere applies another replica's announcement.
func (d *dataChanges) changedElsewhere(payload string) bool {
	for f := range strings.SplitSeq(payload, ",") {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil || id <= 0 {
			return false
		}
		d.count(id).Add(1)
	}
	return true
}

// AnnounceChanges tells the other replicas, through PostgreSQL, which sites'
// data this replica changed, until ctx is done. Announcements are gathered
// for a few milliseconds and sent after the writes commit, so another
// replica may serve what it cached before a write for that long. If the
// database is unreachable the changes stay queued and are sent once it
// answers; other replicas' caches also expire on their own
// (web.PanelCacheTTL). On SQLite there is one process and it returns nil at
// once.
func (s *Store) AnnounceChanges(ctx context.Context) error {
	if s.dialect != DialectPostgres {
		return nil
	}
	d := s.changes
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		}
		t := time.NewTimer(announceGather)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		d.mu.Lock()
		ids := make([]int64, 0, len(d.pending))
		for id := range d.pending {
			ids = append(ids, id)
		}
		clear(d.pending)
		d.mu.Unlock()
		if err := s.announce(ctx, ids); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("store: announcing data changes failed; retrying", "err", err, "sites", len(ids))
			d.mu.Lock()
			for _, id := range ids {
				d.pending[id] = struct{}{}
			}
			d.mu.Unlock()
			select {
			case d.wake <- struct{}{}:
			default:
			}
			b := time.NewTimer(announceBackoff)
			select {
			case <-ctx.Done():
				b.Stop()
				return nil
			case <-b.C:
			}
		}
	}
}

// announce sends ids in as few notifications as the payload limit allows.
func (s *Store) announce(ctx context.Context, ids []int64) error {
	for len(ids) > 0 {
		var b []byte
		n := 0
		for n < len(ids) && len(b) < announceMaxPayload {
			if n > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, ids[n], 10)
			n++
		}
		if err := s.db.WithContext(ctx).Exec(`SELECT pg_notify(?, ?)`, dataChannel, string(b)).Error; err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}
