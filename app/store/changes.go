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
// changes, each a tenant id (the whole site) or "<tenant id>:<issue key>"
// (what is shown for that issue only). Issue keys hold no commas or colons.
const dataChannel = "keyline_data"

// keyStripes is how many counters the sites' issue keys share. Two keys on
// one stripe only make each other's cached pages stale more often.
const keyStripes = 1 << 16

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

// DataVersion identifies what one replica knows of what is shown for one
// issue of a site: the entities linked to it and Jira's facts about it. It
// changes after every write to the site's DevOps data on this replica
// (after a Jira issue event or a link, only for the issues it touched),
// when another replica announces one, and for every site at once when
// announcements may have been missed. Caches of what was read compare
// versions taken before the read; equal versions mean no change was seen in
// between.
type DataVersion struct {
	epoch, site, key uint64
}

// dataChanges counts the writes to each site's data and, on PostgreSQL,
// queues them for announcement to the other replicas.
type dataChanges struct {
	// epoch changes when announcements may have been lost, which makes
	// every earlier version stale.
	epoch atomic.Uint64
	// counts maps tenant id to *atomic.Uint64: writes to the whole site.
	counts sync.Map
	// keys counts writes that changed only some issues' pages, by stripe of
	// the site and issue key (keyStripe).
	keys [keyStripes]atomic.Uint64
	// shared is set once the watcher has started: from then on other
	// replicas' writes count, and versions can be trusted only while
	// listening is set.
	shared    atomic.Bool
	listening atomic.Bool

	mu sync.Mutex
	// pending holds the changes not yet announced, as written in the
	// announcement: a tenant id, or "<tenant id>:<issue key>".
	pending map[string]struct{}
	wake    chan struct{}
}

func newDataChanges() *dataChanges {
	return &dataChanges{pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

// keyStripe is the stripe of issueKey of tenant tenantID: FNV-1a over the
// tenant id's eight bytes and the key, as hash/fnv computes it, but without
// hash/fnv's allocations, because every panel load asks. The tenant is part
// of it so that sites whose projects share keys (PAY-1 on many sites) do not
// clear each other's pages. It is the same in every process.
func keyStripe(tenantID int64, issueKey string) int {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := range 8 {
		h ^= uint32(byte(uint64(tenantID) >> (8 * i)))
		h *= prime32
	}
	for i := 0; i < len(issueKey); i++ {
		h ^= uint32(issueKey[i])
		h *= prime32
	}
	return int(h % keyStripes)
}

func (d *dataChanges) count(tenantID int64) *atomic.Uint64 {
	if c, ok := d.counts.Load(tenantID); ok {
		return c.(*atomic.Uint64)
	}
	c, _ := d.counts.LoadOrStore(tenantID, new(atomic.Uint64))
	return c.(*atomic.Uint64)
}

// DataVersion reports the version of what is shown for issueKey of the site,
// as this replica knows it. ok is false while this replica cannot know of
// other replicas' writes (its watcher is reconnecting); nothing read then
// may be cached.
func (s *Store) DataVersion(tenantID int64, issueKey string) (v DataVersion, ok bool) {
	d := s.changes
	if d.shared.Load() && !d.listening.Load() {
		return DataVersion{}, false
	}
	return DataVersion{epoch: d.epoch.Load(), site: d.count(tenantID).Load(), key: d.keys[keyStripe(tenantID, issueKey)].Load()}, true
}

// changed records that a write to the site's data has ended. It must run
// after the write commits (or fails): a reader that took the new version
// could otherwise still read the old rows and cache them as current.
// Write methods call it deferred, so a write whose outcome is unknown also
// counts.
func (s *Store) changed(tenantID int64) {
	s.changes.count(tenantID).Add(1)
	s.queueChange(strconv.FormatInt(tenantID, 10))
}

// changedIssues is changed for a write that changed only what is shown for
// keys. With no keys (the write failed, or its reach is not known) the
// whole site counts as changed.
func (s *Store) changedIssues(tenantID int64, keys []string) {
	if len(keys) == 0 {
		s.changed(tenantID)
		return
	}
	for _, k := range keys {
		s.changes.keys[keyStripe(tenantID, k)].Add(1)
		s.queueChange(strconv.FormatInt(tenantID, 10) + ":" + k)
	}
}

// queueChange queues a change for AnnounceChanges on PostgreSQL.
func (s *Store) queueChange(c string) {
	if s.dialect != DialectPostgres {
		return
	}
	d := s.changes
	d.mu.Lock()
	d.pending[c] = struct{}{}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// changedElsewhere applies another replica's announcement; false means it
// was malformed.
func (d *dataChanges) changedElsewhere(payload string) bool {
	for f := range strings.SplitSeq(payload, ",") {
		site, key, scoped := strings.Cut(f, ":")
		id, err := strconv.ParseInt(site, 10, 64)
		if err != nil || id <= 0 || (scoped && key == "") {
			return false
		}
		if scoped {
			d.keys[keyStripe(id, key)].Add(1)
		} else {
			d.count(id).Add(1)
		}
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
		changes := make([]string, 0, len(d.pending))
		for c := range d.pending {
			changes = append(changes, c)
		}
		clear(d.pending)
		d.mu.Unlock()
		if err := s.announce(ctx, changes); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("store: announcing data changes failed; retrying", "err", err, "changes", len(changes))
			d.mu.Lock()
			for _, c := range changes {
				d.pending[c] = struct{}{}
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

// announce sends changes in as few notifications as the payload limit
// allows.
func (s *Store) announce(ctx context.Context, changes []string) error {
	for len(changes) > 0 {
		var b strings.Builder
		n := 0
		for n < len(changes) && b.Len()+len(changes[n]) < announceMaxPayload {
			if n > 0 {
				b.WriteByte(',')
			}
			b.WriteString(changes[n])
			n++
		}
		if n == 0 {
			// An issue key too long for a notification: announce its
			// whole site instead.
			site, _, _ := strings.Cut(changes[0], ":")
			b.WriteString(site)
			n = 1
		}
		if err := s.db.WithContext(ctx).Exec(`SELECT pg_notify(?, ?)`, dataChannel, b.String()).Error; err != nil {
			return err
		}
		changes = changes[n:]
	}
	return nil
}
