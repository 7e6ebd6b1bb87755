package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/loadtest"
	"github.com/keyline/keyline/app/observe"
	"github.com/keyline/keyline/app/store"
)

// withLimits rebuilds h's server with a receiver that applies cfg at a
// clock that never moves (so no bucket refills during the test), and with
// m as its Observer.
func (h *harness) withLimits(cfg ingest.LimitConfig, m *observe.Metrics) {
	h.t.Helper()
	frozen := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	lim, err := ingest.NewLimits(cfg, func() time.Time { return frozen })
	if err != nil {
		h.t.Fatal(err)
	}
	deps := h.server.deps
	deps.Receiver = ingest.NewReceiver(h.store, nil, ingest.WithLimits(lim))
	deps.Observer = m
	srv, err := New(deps)
	if err != nil {
		h.t.Fatal(err)
	}
	h.server = srv
}

// TestIngestRateLimits sends pushes in order to three GitHub sources (acme
// a and b, globex c) and checks each answer. A refused push must get 429
// with a Retry-After of whole seconds and a body naming the limit, and must
// store nothing: no line in its source's delivery log and none of the issue
// links it carries. Other sources and sites keep being served.
func TestIngestRateLimits(t *testing.T) {
	type send struct {
		to    string // "a", "b" (acme) or "c" (globex)
		limit string // "" for 200 accepted, else the limit that refuses it
	}
	for _, tc := range []struct {
		name  string
		cfg   ingest.LimitConfig
		sends []send
	}{
		{
			name: "a source past its burst gets 429; its site's other source and other sites do not",
			cfg:  ingest.LimitConfig{SourceRate: 1, SourceBurst: 2, SiteRate: 1, SiteBurst: 100},
			sends: []send{
				{"a", ""}, {"a", ""}, {"a", ingest.LimitSource}, {"a", ingest.LimitSource},
				{"b", ""}, {"c", ""}, {"c", ""}, {"c", ingest.LimitSource},
			},
		},
		{
			name: "the site limit counts every source of the site",
			cfg:  ingest.LimitConfig{SourceRate: 1, SourceBurst: 100, SiteRate: 1, SiteBurst: 2},
			sends: []send{
				{"a", ""}, {"b", ""}, {"a", ingest.LimitSite}, {"b", ingest.LimitSite},
				{"c", ""}, {"c", ""}, {"c", ingest.LimitSite},
			},
		},
		{
			name:  "limits off",
			cfg:   ingest.LimitConfig{},
			sends: []send{{"a", ""}, {"a", ""}, {"a", ""}, {"b", ""}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, st *store.Store) {
				h := newHarness(t, st)
				m := observe.New()
				h.withLimits(tc.cfg, m)
				hooks := map[string]hook{
					"a": h.addSource(acme, ingest.KindGitHub),
					"b": h.addSource(acme, ingest.KindGitHub),
					"c": h.addSource(globex, ingest.KindGitHub),
				}
				accepted := map[string]int{}
				limited := 0
				for i, s := range tc.sends {
					k := hooks[s.to]
					// Each push comes from a repository of its own whose
					// second commit names issue Q<i>-3, so what a push
					// stored can be told apart from every other's.
					project := fmt.Sprintf("Q%c", 'A'+i)
					body, id := loadtest.NewRepo(int64(100+i), "acme/svc-"+project, project).Push(2, time.Now())
					rec := h.sendHook(k.token, "", withHeader(signed(k.kind, k.secret, body),
						"X-GitHub-Event", "push", "X-GitHub-Delivery", id), body)
					links := h.links(k, project+"-3")
					if s.limit == "" {
						accepted[s.to]++
						if rec.Code != http.StatusOK || len(links) == 0 {
							t.Errorf("push %d to %s: %d %s, %d links; want 200 and stored", i+1, s.to, rec.Code, rec.Body, len(links))
						}
						continue
					}
					limited++
					if rec.Code != http.StatusTooManyRequests {
						t.Errorf("push %d to %s: %d %s, want 429", i+1, s.to, rec.Code, rec.Body)
						continue
					}
					if secs, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || secs < 1 {
						t.Errorf("push %d to %s: Retry-After %q, want whole seconds ≥ 1", i+1, s.to, rec.Header().Get("Retry-After"))
					}
					if want := `{"error":"rate limit of the ` + s.limit; !strings.HasPrefix(rec.Body.String(), want) {
						t.Errorf("push %d to %s: body %s, want it to start %s", i+1, s.to, rec.Body, want)
					}
					if len(links) != 0 {
						t.Errorf("push %d to %s was refused but stored %d links", i+1, s.to, len(links))
					}
				}
				for name, k := range hooks {
					log := h.deliveryLog(k)
					if len(log) != accepted[name] {
						t.Errorf("source %s: %d delivery-log lines, want %d (the accepted ones only)", name, len(log), accepted[name])
					}
					for _, l := range log {
						if l.Outcome != store.DeliveryAccepted {
							t.Errorf("source %s: log line %+v", name, l)
						}
					}
				}
				exposed := scrape(t, m)
				want := fmt.Sprintf(`keyline_ingest_deliveries_total{kind="github",outcome="rate_limited"} %d`, limited)
				if (limited > 0) != strings.Contains(exposed, want) || (limited == 0 && strings.Contains(exposed, "rate_limited")) {
					t.Errorf("metrics: want %d rate_limited deliveries:\n%s", limited, grepLines(exposed, "deliveries_total"))
				}
			})
		})
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The token of an unknown URL never reaches the limits: a flood of made-up
// tokens is answered 404 and leaves no bucket behind.
func TestIngestRateLimitsIgnoreUnknownTokens(t *testing.T) {
	h := newHarness(t, dbtest.SQLiteStore(t))
	lim, err := ingest.NewLimits(ingest.LimitConfig{SourceRate: 1, SourceBurst: 1, SiteRate: 1, SiteBurst: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	deps := h.server.deps
	deps.Receiver = ingest.NewReceiver(h.store, nil, ingest.WithLimits(lim))
	if h.server, err = New(deps); err != nil {
		t.Fatal(err)
	}
	body := fixture(t, "github/push.json")
	for i := range 200 {
		if rec := h.sendHook(fmt.Sprint("made-up-", i), "", nil, body); rec.Code != http.StatusNotFound {
			t.Fatalf("unknown token %d: %d", i, rec.Code)
		}
	}
	if src, site := lim.Buckets(); src != 0 || site != 0 {
		t.Errorf("unknown tokens made %d source and %d site buckets", src, site)
	}
}
