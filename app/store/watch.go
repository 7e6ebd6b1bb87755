package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Watcher timing. The idle probe catches a connection that died without a
// reset (a NAT or proxy dropping it silently), which would otherwise leave
// the watcher waiting forever while changes go unnoticed.
const (
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = 30 * time.Second
	watchIdleProbe  = 30 * time.Second
	watchPingTime   = 5 * time.Second
	// watchStable is how long a connection must have listened before its
	// loss counts as a new outage and the backoff starts over; a server that
	// accepts and then drops connections keeps backing off.
	watchStable = time.Minute
)

// WatchTenants calls fn(appKey, clientKey) whenever any replica changes a
// tenant, until ctx is done; then it returns nil. It also applies other
// replicas' announcements of changed site data (AnnounceChanges) to
// DataVersion; while it is not listening, DataVersion reports that nothing
// may be cached, and each (re)start makes every earlier version stale. It
// listens on a dedicated PostgreSQL connection and reconnects with
// exponential backoff when that connection fails. onReconnect (may be nil)
// is called each time listening (re)starts, the first time included,
// because changes made while no connection was listening are lost: the
// caller should flush its cache then.
// fn and onReconnect run on the watcher's goroutine and should be quick.
//
// On SQLite there is only one process, which invalidates its own cache, so
// WatchTenants returns nil at once.
func (s *Store) WatchTenants(ctx context.Context, fn func(appKey, clientKey string), onReconnect func()) error {
	if s.dialect != DialectPostgres {
		return nil
	}
	if fn == nil {
		return errors.New("store: watch tenants: nil callback")
	}
	cfg, err := pgx.ParseConfig(s.pgURL)
	if err != nil {
		return fmt.Errorf("store: watch tenants: %w", err)
	}
	s.changes.shared.Store(true)
	backoff := watchMinBackoff
	for {
		started := time.Now()
		listened, err := s.listenTenants(ctx, cfg, fn, onReconnect)
		s.changes.listening.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if listened && time.Since(started) > watchStable {
			backoff = watchMinBackoff
		}
		s.log.Warn("store: tenant watcher disconnected; reconnecting", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, watchMaxBackoff)
	}
}

// listenTenants runs one connection's life. listened reports whether LISTEN
// succeeded, i.e. whether onReconnect was called.
func (s *Store) listenTenants(ctx context.Context, cfg *pgx.ConnConfig, fn func(string, string), onReconnect func()) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), watchPingTime)
		conn.Close(cctx)
		cancel()
	}()
	for _, ch := range []string{tenantChannel, dataChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return false, fmt.Errorf("listen: %w", err)
		}
	}
	// Changes announced while nobody listened are lost: start a new epoch.
	s.changes.epoch.Add(1)
	s.changes.listening.Store(true)
	if s.onListen != nil {
		s.onListen(conn.PgConn().PID())
	}
	if onReconnect != nil {
		onReconnect()
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, watchIdleProbe)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// Quiet period: a timeout leaves a pgx connection usable, so
			// check that the server is still there and keep waiting.
			pctx, cancel := context.WithTimeout(ctx, watchPingTime)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, fmt.Errorf("ping: %w", err)
			}
			continue
		case err != nil:
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		if n.Channel == dataChannel {
			if !s.changes.changedElsewhere(n.Payload) {
				s.log.Warn("store: data watcher: malformed notification; dropping cached data")
				s.changes.epoch.Add(1)
			}
			continue
		}
		appKey, clientKey, ok := strings.Cut(n.Payload, " ")
		if !ok {
			s.log.Warn("store: tenant watcher: malformed notification ignored")
			continue
		}
		fn(appKey, clientKey)
	}
}
