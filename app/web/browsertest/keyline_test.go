package browsertest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/jira"
	"github.com/keyline/keyline/app/preview"
	"github.com/keyline/keyline/app/secret"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
	"github.com/keyline/keyline/app/web"
	"github.com/keyline/keyline/descriptor"
)

// Hostile text in the test site's data. Rendered as text it is harmless;
// interpreted as markup it sets window.__pwned, which every frame checks.
const (
	scriptLine = "Render <script>window.__pwned=1</script> as text"
	imgLine    = "Escape <img src=x onerror=window.__pwned=2> in receipts"
)

// site is a running Keyline with a seeded demo site, and the preview host
// that frames it, each on its own 127.0.0.1 port as Jira and Keyline are on
// different origins.
type site struct {
	keylineURL string
	hostURL    string
	cfg        *config.Config
	store      *store.Store
	demo       *preview.Demo
	logs       *syncBuffer
}

// syncBuffer collects Keyline's log lines for a failing test's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startSite wires Keyline as cmd/keyline's newApplication does (settings
// from the environment, embedded SQLite with a generated secret key, the
// tenant cache, the verifiers, the Jira client), seeds the demo site plus the
// hostile data, and starts both servers.
func startSite(t *testing.T) *site {
	t.Helper()
	ctx := context.Background()
	hostLn := listen(t)
	keylineLn := listen(t)
	s := &site{
		hostURL:    "http://" + hostLn.Addr().String(),
		keylineURL: "http://" + keylineLn.Addr().String(),
		logs:       &syncBuffer{},
	}
	dir := t.TempDir()
	// The host page is the product here: it may frame Keyline's pages
	// through the setting that lets a local page do so.
	cfg, err := config.Load(map[string]string{"KEYLINE_DATA_DIR": dir, "KEYLINE_LOG_FORMAT": "text",
		"KEYLINE_FRAME_ANCESTORS": s.hostURL})
	if err != nil {
		t.Fatal(err)
	}
	s.cfg = cfg
	log := slog.New(slog.NewTextHandler(s.logs, nil))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Keyline's log:\n%s", s.logs)
		}
	})
	key, err := secret.LoadOrCreateKeyFile(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := secret.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(ctx, cfg.SQLitePath(), sealer, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s.store = st
	tenants := tenant.NewCache(st)
	renderer, err := descriptor.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	views, err := web.NewIssueViewCache(cfg.IssueViewCache)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Deps{
		IssueViews:  views,
		Logger:      log,
		Store:       st,
		Tenants:     tenants,
		Verifier:    connect.NewVerifier(tenants),
		Installs:    connect.NewInstallVerifier(connect.NewKeyFetcher(cfg.InstallKeysURL, &http.Client{Timeout: 5 * time.Second}), cfg.AllowedHosts),
		Descriptors: renderer,
		// The demo site's Jira is the preview host; this client signs every
		// call to it, and the host checks the signature.
		Jira:           jira.New(cfg.JiraAppKey(), &http.Client{Timeout: 10 * time.Second}),
		Receiver:       ingest.NewReceiver(st, log),
		BaseURL:        cfg.BaseURL,
		AppKeyPrefix:   cfg.AppKey,
		AllowedHosts:   cfg.AllowedHosts,
		FrameAncestors: cfg.FrameAncestors,
		RetentionDays:  cfg.RetentionDays,
		Version:        "browsertest",
	})
	if err != nil {
		t.Fatal(err)
	}
	s.demo, err = preview.Seed(ctx, st, preview.SeedOptions{AppKeyPrefix: cfg.AppKey, SiteURL: s.hostURL})
	if err != nil {
		t.Fatal(err)
	}
	addHostileData(t, st, s.demo)
	host, err := preview.New(s.demo.HostOptions(st, cfg.AppKey, s.keylineURL))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, keylineLn, srv.Handler())
	serve(t, hostLn, host)
	return s
}

// listen opens a port on 127.0.0.1 only.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func serve(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Listener.Close()
	ts.Listener = ln
	ts.Config.ErrorLog = slog.NewLogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)).Handler(), slog.LevelWarn)
	ts.Start()
	t.Cleanup(ts.Close)
}

// addHostileData records, for the featured issue, a branch from a fork whose
// commit messages and pull request title carry markup, as any contributor
// could write them.
func addHostileData(t *testing.T, st *store.Store, d *preview.Demo) {
	t.Helper()
	ctx := context.Background()
	src, _, _, err := st.CreateSource(ctx, d.Jira, store.SourceGitHub, "GitHub: contractor fork")
	if err != nil {
		t.Fatal(err)
	}
	key := d.Featured
	repo := devops.Repository{ID: "66600", Name: "contractor/checkout-api", URL: "https://github.com/contractor/checkout-api"}
	at := time.Now().Add(-40 * time.Minute).UTC()
	person := devops.Person{Name: "Mallory <b>Contractor</b>", Email: "mallory@contractor.example", Username: "mallory"}
	c1 := devops.Commit{SHA: "c0ffee0000000000000000000000000000000001", RepositoryID: repo.ID,
		Message: key + " " + scriptLine + "\n\nSee javascript:window.__pwned=3 and " + imgLine,
		Author:  person, AuthoredAt: at, URL: "javascript:window.__pwned=4", IssueKeys: []string{key}}
	c2 := devops.Commit{SHA: "c0ffee0000000000000000000000000000000002", RepositoryID: repo.ID,
		Message: key + " " + imgLine, Author: person, AuthoredAt: at.Add(5 * time.Minute),
		URL: repo.URL + "/commit/c0ffee0000000000000000000000000000000002", IssueKeys: []string{key}}
	branch := "feature/" + key + "-hardening"
	batches := []devops.Batch{
		{Repository: &repo, Commits: []devops.Commit{c1, c2},
			Push: &devops.Push{RepositoryID: repo.ID, Ref: "refs/heads/" + branch, After: c2.SHA,
				CommitSHAs: []string{c1.SHA, c2.SHA}, Created: true, PushedAt: at.Add(6 * time.Minute)},
			Branches: []devops.Branch{{RepositoryID: repo.ID, Name: branch, URL: repo.URL + "/tree/" + branch,
				LastCommitSHA: c2.SHA, UpdatedAt: at.Add(6 * time.Minute), IssueKeys: []string{key}}}},
		{Repository: &repo, PullRequests: []devops.PullRequest{{ID: "66601", RepositoryID: repo.ID, Number: 1,
			Title: key + " " + imgLine, BodyExcerpt: "<script>window.__pwned=5</script>",
			State: devops.PullRequestOpen, SourceBranch: branch, DestinationBranch: "main", Author: person,
			CreatedAt: at.Add(8 * time.Minute), UpdatedAt: at.Add(8 * time.Minute),
			URL: repo.URL + "/pull/1", IssueKeys: []string{key}}}},
	}
	for i, b := range batches {
		del := store.Delivery{DeliveryID: "hostile-" + string(rune('a'+i)), Event: "push", Outcome: store.DeliveryAccepted,
			Status: 200, ReceivedAt: at.Add(10 * time.Minute)}
		if err := st.RecordEvent(ctx, d.Jira, src.ID, del, &b); err != nil {
			t.Fatal(err)
		}
	}
}

// artifactsDir is where screenshots go: $KEYLINE_ARTIFACTS (CI collects it),
// else testdata/artifacts beside this file (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KEYLINE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
