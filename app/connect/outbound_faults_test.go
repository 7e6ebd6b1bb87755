package connect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestClientFailingProductBoundsRequests: against a product that always
// fails, N concurrent callers sharing one Client make at most
// N×(maxRetries+1) requests in all, each caller waiting between its
// attempts; answers that are not retried cost one request per caller.
func TestClientFailingProductBoundsRequests(t *testing.T) {
	const (
		callers    = 8
		maxRetries = 2
		maxWait    = 5 * time.Second
	)
	tests := []struct {
		method     string
		status     int
		retryAfter string
		retried    bool
	}{
		{http.MethodGet, http.StatusTooManyRequests, "", true},
		{http.MethodPost, http.StatusTooManyRequests, "3", true},
		{http.MethodGet, http.StatusServiceUnavailable, "", true},
		{http.MethodPost, http.StatusServiceUnavailable, "", true},
		{http.MethodGet, http.StatusInternalServerError, "", true},
		{http.MethodGet, http.StatusBadGateway, "", true},
		{http.MethodGet, http.StatusGatewayTimeout, "3600", true},
		{http.MethodPost, http.StatusInternalServerError, "", false},
		{http.MethodPost, http.StatusBadGateway, "", false},
		{http.MethodPost, http.StatusGatewayTimeout, "", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d", tt.method, tt.status), func(t *testing.T) {
			p := newProduct(t, "")
			p.respond = func(_ int, w http.ResponseWriter) int {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				return tt.status
			}
			c := NewClient(testAppKey, p.tenant(), p.srv.Client(), WithClock(fixedClock),
				WithMaxRetries(maxRetries), WithMaxRetryWait(maxWait))
			var mu sync.Mutex
			var waits []time.Duration
			c.sleep = func(_ context.Context, d time.Duration) error {
				mu.Lock()
				waits = append(waits, d)
				mu.Unlock()
				return nil
			}

			var wg sync.WaitGroup
			errs := make([]error, callers)
			for i := range callers {
				wg.Go(func() {
					var resp *http.Response
					var err error
					if tt.method == http.MethodGet {
						resp, err = c.Get(context.Background(), "/rest/api/3/myself")
					} else {
						resp, err = c.PostJSON(context.Background(), "/rest/api/3/permissions/check", map[string]any{})
					}
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode != tt.status {
							err = fmt.Errorf("status %d handed back, want %d", resp.StatusCode, tt.status)
						}
					}
					errs[i] = err
				})
			}
			wg.Wait()

			attempts, wantWaits := 1, 0
			if tt.retried {
				attempts, wantWaits = maxRetries+1, maxRetries
			}
			if n := len(p.requests()); n != callers*attempts {
				t.Errorf("product saw %d requests from %d callers, want %d (%d each)", n, callers, callers*attempts, attempts)
			}
			for i, err := range errs {
				switch {
				case tt.retried && !errors.Is(err, ErrRetriesExhausted):
					t.Errorf("caller %d: err = %v, want ErrRetriesExhausted", i, err)
				case !tt.retried && err != nil:
					t.Errorf("caller %d: err = %v, want the %d handed back", i, err, tt.status)
				}
			}
			if len(waits) != callers*wantWaits {
				t.Errorf("%d waits, want %d", len(waits), callers*wantWaits)
			}
			for _, d := range waits {
				if d < time.Second || d > maxWait {
					t.Errorf("waited %v before a retry, want between 1s and the %v cap", d, maxWait)
				}
			}
		})
	}
}
