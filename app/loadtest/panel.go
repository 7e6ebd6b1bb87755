package loadtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"html"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// PanelModulePath and PanelModuleQuery are the issue panel's module URL in
// Keyline's Jira descriptor (jiraIssueContents "devops-panel"), under the
// Jira app's base path; a test keeps them equal to the descriptor's.
const (
	PanelModulePath  = "/jira/panel"
	PanelModuleQuery = "issueKey={issue.key}&issueId={issue.id}&projectKey={project.key}"
	// panelModuleKey names the module in Jira's xdm_c iframe parameter.
	panelModuleKey = "devops-panel"
	// jiraBasePath is the Jira app's base path, which the qsh leaves out.
	jiraBasePath = "/jira"
)

// DefaultTokenLifetime is how long Jira's iframe tokens are valid.
const DefaultTokenLifetime = 3 * time.Minute

// tokenClock is a generator's token lifetime and clock, with their
// defaults (DefaultTokenLifetime, time.Now) for zero values.
func tokenClock(lifetime time.Duration, now func() time.Time) (time.Duration, func() time.Time) {
	if lifetime <= 0 {
		lifetime = DefaultTokenLifetime
	}
	if now == nil {
		now = time.Now
	}
	return lifetime, now
}

// PanelIssue is one issue whose panel is loaded.
type PanelIssue struct {
	Key        string // e.g. PAY-7
	ID         string // Jira's numeric id
	ProjectKey string
	// Summary is the issue's title as seeded; Jira issue events carry it,
	// so the load test's events keep it.
	Summary string
}

// PanelSite is one Jira site whose issue panels are loaded: its client key,
// base URL and shared secret as its install record holds them, and the
// issues seeded for it.
type PanelSite struct {
	ClientKey    string
	BaseURL      string
	SharedSecret []byte
	Issues       []PanelIssue
}

// IssuePanels generates iframe loads of the Jira issue panel the way Jira
// makes them: GET BaseURL/jira/panel with the module's query, Jira's iframe
// parameters and a token signed with the site's shared secret whose qsh
// binds that query. Every request gets a token of its own, issued when the
// request is built, because Jira signs a new one for each iframe load: the
// server verifies each token afresh here as it must in production, and a
// cache of verified tokens would flatter the load test and nothing else.
type IssuePanels struct {
	// BaseURL is where Keyline listens, e.g. http://127.0.0.1:8080.
	BaseURL string
	// AppKey is Keyline's Jira app key (config.JiraAppKey).
	AppKey string
	Sites  []PanelSite
	// TokenLifetime is exp − iat; zero means DefaultTokenLifetime.
	TokenLifetime time.Duration
	// Now stamps iat and exp; nil means time.Now.
	Now func() time.Time
}

// panelTarget is one (site, issue) pair, with everything about its request
// that does not change between loads worked out once: the URL without the
// token and the token's claims around the parts that change (sub, exp,
// iat), already in the JSON golang-jwt would write.
type panelTarget struct {
	url   url.URL // RawQuery is query plus the token, per request
	query string  // without the token
	site  int     // index of the site, whose MAC signs the token
	// claimsHead is `{"iss":<client key>,"sub":` and claimsTail
	// `,"qsh":<qsh>,"context":{}}`; exp and iat go between.
	claimsHead, claimsTail string
	// accounts are the site's synthetic users, JSON-encoded; each load is
	// by one of them.
	accounts []string
}

// usersPerSite is how many different users load panels on one site; the
// token's sub is one of them.
const usersPerSite = 16

// Generator returns the generator for Run. Each worker picks (site, issue)
// pairs uniformly at random from a generator of its own, so every site and
// issue is loaded and no worker state is shared. Uniform access is the
// harder case for the database's buffers: real traffic favours recent
// issues.
//
// The load generator shares the server's cores in a local run, so its
// work per request is kept small (see panelSigner): the tokens are the
// ones golang-jwt would sign, written without its reflection.
func (g IssuePanels) Generator() (Generator, error) {
	if g.AppKey == "" {
		return nil, errors.New("loadtest: no app key")
	}
	if len(g.Sites) == 0 {
		return nil, errors.New("loadtest: no sites to load panels of")
	}
	lifetime, now := tokenClock(g.TokenLifetime, g.Now)
	base := strings.TrimSuffix(g.BaseURL, "/")
	panelURL, err := url.Parse(base + PanelModulePath)
	if err != nil || panelURL.Host == "" {
		return nil, fmt.Errorf("loadtest: base URL %q: want http(s)://host[:port][/path]", g.BaseURL)
	}
	var targets []panelTarget
	secrets := make([][]byte, len(g.Sites))
	for si, s := range g.Sites {
		if s.ClientKey == "" || len(s.SharedSecret) == 0 {
			return nil, fmt.Errorf("loadtest: site %q has no client key or shared secret", s.BaseURL)
		}
		secrets[si] = s.SharedSecret
		accounts := panelAccountIDs(s.ClientKey)
		for i, a := range accounts {
			accounts[i] = jsonString(a)
		}
		for _, is := range s.Issues {
			query := PanelQuery(is, s.BaseURL, g.AppKey)
			qsh, err := connect.QSH(http.MethodGet, PanelModulePath, query, jiraBasePath)
			if err != nil {
				return nil, fmt.Errorf("loadtest: qsh of %s: %w", is.Key, err)
			}
			targets = append(targets, panelTarget{url: *panelURL, query: query, site: si,
				claimsHead: `{"iss":` + jsonString(s.ClientKey) + `,"sub":`,
				claimsTail: `,"qsh":` + jsonString(qsh) + `,"context":{}}`,
				accounts:   accounts})
		}
	}
	if len(targets) == 0 {
		return nil, errors.New("loadtest: the sites have no issues")
	}
	return func(w int) NextFunc {
		rnd := rand.New(rand.NewPCG(uint64(w), 0x6b65796c696e65)) // per worker: no shared state
		signer := newPanelSigner(secrets)
		// What a browser sends for an iframe document; Keyline's error
		// pages depend on it being HTML. One map serves all of the
		// worker's requests: each is sent, answered and checked before
		// the next is built, and nothing on the way changes its headers.
		header := http.Header{
			"Accept":     {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
			"User-Agent": {"Mozilla/5.0 (keyline-loadtest)"},
		}
		var query []byte
		return func() (*http.Request, error) {
			t := &targets[rnd.IntN(len(targets))]
			tok := signer.sign(t, t.accounts[rnd.IntN(len(t.accounts))], now(), lifetime)
			query = append(append(append(query[:0], t.query...), "&jwt="...), tok...)
			u := new(url.URL)
			*u = t.url
			u.RawQuery = string(query)
			return &http.Request{Method: http.MethodGet, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: header, Host: u.Host}, nil
		}
	}, nil
}

// panelAccountIDs are the synthetic users of the site of clientKey
// (usersPerSite of them), as Atlassian account ids: 24 hex digits.
func panelAccountIDs(clientKey string) []string {
	ids := make([]string, usersPerSite)
	for i := range ids {
		sum := sha1.Sum([]byte(clientKey + "/user/" + strconv.Itoa(i)))
		ids[i] = hex.EncodeToString(sum[:12])
	}
	return ids
}

// jsonString is s as encoding/json writes it, which is what golang-jwt's
// SignedString puts in a token's claims.
func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil { // cannot happen: every string has a JSON encoding
		panic(err)
	}
	return string(b)
}

// jwtHeaderHS256 is the header golang-jwt writes for an HS256 token,
// {"alg":"HS256","typ":"JWT"}, base64url-encoded; a test keeps it equal.
const jwtHeaderHS256 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// panelSigner signs one worker's panel tokens. It writes exactly the
// token golang-jwt's SignedString makes of connect.Claims with the same
// values (a test compares them byte for byte), but into buffers it reuses
// and with one HMAC per site, made on the site's first token and reset for
// each next one: json.Marshal of the claims and hmac.New per token were
// most of the generator's CPU, which in a local run is taken from the
// server. Each token is still signed afresh, with its own iat and exp.
type panelSigner struct {
	secrets  [][]byte
	macs     []hash.Hash
	claims   []byte
	tok, sum []byte
}

func newPanelSigner(secrets [][]byte) *panelSigner {
	return &panelSigner{secrets: secrets, macs: make([]hash.Hash, len(secrets))}
}

// sign returns the HS256 token of t's claims for the user whose
// JSON-encoded account id is sub, issued at and valid for lifetime. The
// token is valid until the next call.
func (s *panelSigner) sign(t *panelTarget, sub string, at time.Time, lifetime time.Duration) []byte {
	mac := s.macs[t.site]
	if mac == nil {
		mac = hmac.New(sha256.New, s.secrets[t.site])
		s.macs[t.site] = mac
	}
	// jwt.NumericDate marshals whole seconds (jwt.TimePrecision), as Unix
	// does for any time after 1970. Field order is connect.Claims': iss,
	// sub, exp, iat (aud, nbf and jti are empty and left out), qsh, context.
	c := append(s.claims[:0], t.claimsHead...)
	c = append(c, sub...)
	c = append(c, `,"exp":`...)
	c = strconv.AppendInt(c, at.Add(lifetime).Unix(), 10)
	c = append(c, `,"iat":`...)
	c = strconv.AppendInt(c, at.Unix(), 10)
	c = append(c, t.claimsTail...)
	s.claims = c

	tok := append(s.tok[:0], jwtHeaderHS256+"."...)
	tok = base64.RawURLEncoding.AppendEncode(tok, c)
	mac.Reset()
	mac.Write(tok)
	s.sum = mac.Sum(s.sum[:0])
	tok = append(tok, '.')
	tok = base64.RawURLEncoding.AppendEncode(tok, s.sum)
	s.tok = tok
	return tok
}

// PanelQuery is the query string of one issue's panel iframe: the module's
// own parameters, then the ones Jira appends to every module URL (spec §6),
// values encoded with %20 for a space as Jira does.
func PanelQuery(is PanelIssue, siteURL, appKey string) string {
	esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	q := strings.NewReplacer("{issue.key}", esc(is.Key), "{issue.id}", esc(is.ID), "{project.key}", esc(is.ProjectKey)).
		Replace(PanelModuleQuery)
	return q + "&xdm_e=" + esc(strings.TrimSuffix(siteURL, "/")) +
		"&xdm_c=" + esc("channel-"+appKey+"__"+panelModuleKey) +
		"&cp=" +
		"&xdm_deprecated_addon_key_do_not_use=" + esc(appKey) +
		"&lic=none&cv=1001.0.0-SNAPSHOT"
}

// CheckPanel accepts a 200 answer that is a whole page (it ends with
// </html>, so a body cut short fails) whose heading names the issue the
// request asked for (the issue-key span holds exactly that key, so the page
// of PAY-10 does not pass for PAY-1) and which shows development (its
// summary line follows the heading; the empty state instead fails as
// "empty panel"). Anything else fails with the status and, for Keyline's
// error pages, the reason they give. It runs for every answer of a run, on
// the server's cores in a local one, so it looks for the markers without
// copying the body or parsing the request's whole query, and reads past the
// heading only as far as the summary when the panel is as it should be.
func CheckPanel(req *http.Request, status int, body []byte) (string, error) {
	if status != http.StatusOK {
		reason := errorPageReason(body)
		if reason == "" {
			reason = http.StatusText(status)
		}
		return fmt.Sprintf("status %d", status), fmt.Errorf("status %d: %s", status, reason)
	}
	key := panelIssueKey(req.URL)
	rest, ok := afterIssueKey(body, key)
	if !ok {
		return "wrong page", fmt.Errorf("status 200 but the page does not show issue %q", key)
	}
	if !bytes.HasSuffix(bytes.TrimRight(rest, " \t\r\n"), []byte("</html>")) {
		return "truncated", fmt.Errorf("status 200 but the page of %s ends before </html>, after %d bytes", key, len(body))
	}
	if bytes.Contains(rest, []byte(`data-testid="summary"`)) {
		return "panel", nil
	}
	if bytes.Contains(rest, []byte(`data-testid="empty-state"`)) {
		// Every seeded issue has development; an empty panel means the
		// seeding went to another database or did not link the issue.
		return "empty panel", fmt.Errorf("status 200 but the panel of %s shows no development", key)
	}
	return "no summary", fmt.Errorf("status 200 but the panel of %s has neither a summary of its development nor the empty state", key)
}

// panelIssueKey is the request's issueKey parameter. The generator puts it
// first, as the module's URL does, so it is read from there without
// parsing the rest of the query; other requests are parsed in full.
func panelIssueKey(u *url.URL) string {
	if rest, ok := strings.CutPrefix(u.RawQuery, "issueKey="); ok {
		if i := strings.IndexByte(rest, '&'); i >= 0 {
			rest = rest[:i]
		}
		if !strings.ContainsAny(rest, "%+;") {
			return rest
		}
	}
	return u.Query().Get("issueKey")
}

// issueKeyOpen precedes the issue's key in the panel's heading.
const issueKeyOpen = `data-testid="issue-key">`

// afterIssueKey returns what follows the panel heading's issue-key element
// when it holds exactly key, and false when it does not or is missing.
func afterIssueKey(body []byte, key string) ([]byte, bool) {
	if key == "" {
		return nil, false
	}
	if strings.ContainsAny(key, `<>&'"`) {
		key = html.EscapeString(key) // as the template writes it
	}
	i := bytes.Index(body, []byte(issueKeyOpen))
	if i < 0 {
		return nil, false
	}
	rest := body[i+len(issueKeyOpen):]
	if len(rest) < len(key) || string(rest[:len(key)]) != key || !bytes.HasPrefix(rest[len(key):], []byte("</span>")) {
		return nil, false
	}
	return rest[len(key)+len("</span>"):], true
}

// errorPageReason finds the message of Keyline's HTML error page (the
// paragraph of its data-testid="error" section) or of a JSON error, so a
// failed run says why ("qsh does not match the request") and not only 401.
func errorPageReason(body []byte) string {
	var js struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &js) == nil && js.Error != "" {
		return js.Error
	}
	s := string(body)
	i := strings.Index(s, `data-testid="error"`)
	if i < 0 {
		return ""
	}
	s = s[i:]
	start := strings.Index(s, "<p>")
	end := strings.Index(s, "</p>")
	if start < 0 || end < start {
		return ""
	}
	return html.UnescapeString(strings.TrimSpace(s[start+len("<p>") : end]))
}

// PanelStore is what SeedPanel needs of the store; *store.Store has it.
type PanelStore interface {
	RecordEvent(ctx context.Context, t *tenant.Tenant, sourceID string, d store.Delivery, b *devops.Batch) error
	ApplyJiraIssueEvent(ctx context.Context, t *tenant.Tenant, ev store.JiraIssueEvent) error
}

// PanelSeed describes the history SeedPanel writes for one site.
type PanelSeed struct {
	// Issues is the number of issues, each with history of its own.
	Issues int
	// Until ends the history: the newest issue's last event is some hours
	// before it. The history is otherwise fixed for a site (its shas, ids,
	// sequence numbers and offsets come from the client key), so seeding
	// again with the same Until writes the same rows; callers pass a time
	// truncated to the day so that re-runs do not pile up history.
	Until time.Time
	// RunID makes delivery ids unique to one seeding run, since the store
	// refuses a delivery id twice.
	RunID string
}

// maxPanelIssues bounds a site's issues: keys and ids stay in range and a
// mistyped flag cannot seed for an hour.
const maxPanelIssues = 100_000

// SeedPanel writes o.Issues issues' DevOps history for t through its source
// sourceID, one delivery per issue, and the issues' Jira status, and returns
// the issues. Every issue has development, so the panel never takes the
// empty state, which asks the site's Jira whether the viewer is an admin.
//
// The issues rotate over three projects, each with its own repository and
// deployment pipeline. Each has a feature branch with 1 to 4 commits, a
// build of each (the first is sometimes red) and a pull request with
// reviewers. Most are merged and deployed to development, staging and
// production (one in twenty fails in production first, one in eight causes
// an incident whose suspect is its production deployment); one in ten is
// deployed to development and staging only, and reaches production with
// the next release of its service, as releases batch changes; one in ten is
// still in review. That is about 10 to 15 items per panel, what a typical
// story shows.
func SeedPanel(ctx context.Context, st PanelStore, t *tenant.Tenant, sourceID string, o PanelSeed) ([]PanelIssue, error) {
	if o.Issues < 1 || o.Issues > maxPanelIssues {
		return nil, fmt.Errorf("loadtest: seed panel: %d issues, want 1 to %d", o.Issues, maxPanelIssues)
	}
	if o.Until.IsZero() {
		return nil, errors.New("loadtest: seed panel: no end time")
	}
	h := newPanelHistory(t.ClientKey, o.Until, o.Issues)
	issues := make([]PanelIssue, 0, o.Issues)
	for n := 1; n <= o.Issues; n++ {
		is, b, ev := h.issue(n)
		d := store.Delivery{DeliveryID: o.RunID + "-" + is.Key, Event: "loadtest", Outcome: store.DeliveryAccepted,
			Status: http.StatusOK, ReceivedAt: ev.Issue.UpdatedAt}
		if err := st.RecordEvent(ctx, t, sourceID, d, b); err != nil {
			return nil, fmt.Errorf("loadtest: seed panel: %s: %w", is.Key, err)
		}
		if err := st.ApplyJiraIssueEvent(ctx, t, ev); err != nil {
			return nil, fmt.Errorf("loadtest: seed panel: %s status: %w", is.Key, err)
		}
		issues = append(issues, is)
	}
	return issues, nil
}

// panelProject is one project of a seeded site and the service its
// repository builds.
type panelProject struct {
	key, service string
}

var panelProjects = []panelProject{{"PAY", "checkout-api"}, {"WEB", "storefront-web"}, {"OPS", "platform-gateway"}}

var panelSummaries = []string{
	"Retry card authorisations on gateway timeouts",
	"Persist the basket across devices",
	"Alert on error budget burn rate",
	"Idempotency keys for refund requests",
	"Lazy-load product images below the fold",
	"Rate-limit abusive clients at the edge",
	"Show Apple Pay in checkout for Safari users",
	"Search suggestions while typing",
	"Nightly database backups to a second region",
	"Fix rounding of multi-currency totals",
	"Server-side render category pages",
	"Structured logs for all services",
}

var panelFollowUps = []string{
	"Cover the edge cases in tests",
	"Address review feedback",
	"Log the decision path",
	"Extract a helper for readability",
}

var panelPeople = []devops.Person{
	{Name: "Ana Lima", Email: "ana.lima@loadtest.example", Username: "analima"},
	{Name: "Ben Okafor", Email: "ben.okafor@loadtest.example", Username: "bokafor"},
	{Name: "Chen Wei", Email: "chen.wei@loadtest.example", Username: "chenwei"},
	{Name: "Dana Kowalski", Email: "dana.kowalski@loadtest.example", Username: "dkowalski"},
	{Name: "Eli Haddad", Email: "eli.haddad@loadtest.example", Username: "ehaddad"},
}

// panelRepo is one repository's state while a site's history is built.
type panelRepo struct {
	project panelProject
	repo    devops.Repository
	head    string
	commits int
	builds  int64
	prs     int64
	deploys map[string]int64 // environment → last sequence number
}

// panelHistory builds one site's history, issue by issue, in time order.
type panelHistory struct {
	client string
	rnd    *rand.Rand
	until  time.Time
	issues int
	repos  []*panelRepo
}

// issueSpacing is the time between two issues' starts; with a site's
// issues spread over weeks, the panel's relative times vary as in real use.
const issueSpacing = 4 * time.Hour

func newPanelHistory(clientKey string, until time.Time, issues int) *panelHistory {
	f := fnv.New64a()
	f.Write([]byte(clientKey))
	h := &panelHistory{client: clientKey, rnd: rand.New(rand.NewPCG(f.Sum64(), 20260324)), until: until.UTC(), issues: issues}
	for i, p := range panelProjects {
		id := strconv.Itoa(710001 + i)
		h.repos = append(h.repos, &panelRepo{project: p, deploys: map[string]int64{},
			repo: devops.Repository{ID: id, Name: "loadtest/" + p.service, URL: "https://github.com/loadtest/" + p.service,
				DefaultBranch: "main"}})
	}
	return h
}

// sha is a commit hash unique to the site, the repository and the commit's
// position, so that seeding again names the same commits.
func (h *panelHistory) sha(r *panelRepo) string {
	r.commits++
	sum := sha1.Sum(fmt.Appendf(nil, "%s/%s/%d", h.client, r.repo.ID, r.commits))
	return hex.EncodeToString(sum[:])
}

// PanelIssueN is the n-th (1-based) issue SeedPanel writes on every site,
// so a caller can name a site's issues without seeding it again.
func PanelIssueN(n int) PanelIssue {
	p := panelProjects[(n-1)%len(panelProjects)]
	return PanelIssue{Key: p.key + "-" + strconv.Itoa(n), ID: strconv.Itoa(10000 + n), ProjectKey: p.key,
		Summary: panelSummaries[(n-1)%len(panelSummaries)]}
}

// issue returns issue n (1-based; issues must be asked for in order) with
// its history as one batch and its Jira status as one issue event.
func (h *panelHistory) issue(n int) (PanelIssue, *devops.Batch, store.JiraIssueEvent) {
	// The repositories are in panelProjects' order, so issue n's is the
	// repository of its project.
	r := h.repos[(n-1)%len(h.repos)]
	p := r.project
	is := PanelIssueN(n)
	summary := is.Summary
	// The newest issue starts three days before the end, so even its
	// production deployment and incident lie in the past.
	begin := h.until.Add(-time.Duration(h.issues-n)*issueSpacing - 72*time.Hour)
	author := panelPeople[h.rnd.IntN(len(panelPeople))]
	reviewer := panelPeople[(h.rnd.IntN(len(panelPeople)-1)+1+indexOf(author))%len(panelPeople)]
	keys := []string{is.Key}
	branch := "feature/" + is.Key + "-" + devops.SummarySlug(summary)
	title := is.Key + " " + summary
	plan := "shipped"
	switch n % 10 {
	case 7:
		plan = "staging"
	case 8:
		plan = "review"
	}

	b := &devops.Batch{Repository: &r.repo}
	commits := 1 + h.rnd.IntN(4)
	failFirst := commits > 1 && h.rnd.IntN(4) == 0
	at := begin
	var shas []string
	for i := range commits {
		msg := title + "\n\nWhy: " + strings.ToLower(summary[:1]) + summary[1:] + " was the team's next step."
		if i > 0 {
			msg = is.Key + " " + panelFollowUps[h.rnd.IntN(len(panelFollowUps))]
		}
		sha := h.sha(r)
		shas = append(shas, sha)
		b.Commits = append(b.Commits, devops.Commit{SHA: sha, RepositoryID: r.repo.ID, Message: msg, Author: author,
			AuthoredAt: at, URL: r.repo.URL + "/commit/" + sha, IssueKeys: keys})
		state := devops.BuildSuccessful
		if i == 0 && failFirst {
			state = devops.BuildFailed
		}
		b.Builds = append(b.Builds, h.build(r, sha, "refs/heads/"+branch, state, at.Add(3*time.Minute), keys))
		at = at.Add(time.Duration(40+h.rnd.IntN(120)) * time.Minute)
	}
	last := shas[len(shas)-1]
	r.prs++
	pr := devops.PullRequest{ID: strconv.FormatInt(900000+r.prs, 10), RepositoryID: r.repo.ID, Number: r.prs,
		Title: title, State: devops.PullRequestOpen, SourceBranch: branch, DestinationBranch: "main", Author: author,
		Reviewers: []devops.Reviewer{{Person: reviewer, Approval: devops.ApprovalUnapproved}},
		CreatedAt: begin.Add(30 * time.Minute), UpdatedAt: at, URL: r.repo.URL + "/pull/" + strconv.FormatInt(r.prs, 10),
		BodyExcerpt: "Closes " + is.Key + ".\n\nHow to test: run the service locally and follow the steps in the issue.",
		IssueKeys:   keys}
	br := devops.Branch{RepositoryID: r.repo.ID, Name: branch, URL: r.repo.URL + "/tree/" + branch,
		LastCommitSHA: last, UpdatedAt: at, IssueKeys: keys}
	ev := store.JiraIssueEvent{Issue: store.JiraIssue{IssueID: is.ID, IssueKey: is.Key, ProjectKey: p.key,
		Summary: summary, StatusName: "In Review", StatusCategory: "indeterminate", UpdatedAt: at},
		Transitions: []store.JiraTransition{
			{FromStatus: "To Do", ToStatus: "In Progress", ToCategory: "indeterminate", At: begin},
			{FromStatus: "In Progress", ToStatus: "In Review", ToCategory: "indeterminate", At: pr.CreatedAt},
		}}

	if plan == "review" {
		// Still on its branch: a push that created it, and a review pending.
		b.Push = &devops.Push{RepositoryID: r.repo.ID, Ref: "refs/heads/" + branch, Before: r.head, After: last,
			CommitSHAs: shas, Created: true, PushedAt: at}
		b.Branches, b.PullRequests = []devops.Branch{br}, []devops.PullRequest{pr}
		return is, b, ev
	}

	merged := at.Add(time.Duration(1+h.rnd.IntN(4)) * time.Hour)
	mergeSHA := h.sha(r)
	b.Commits = append(b.Commits, devops.Commit{SHA: mergeSHA, RepositoryID: r.repo.ID, Author: reviewer,
		Message: fmt.Sprintf("Merge pull request #%d from loadtest/%s\n\n%s", r.prs, branch, title), Merge: true,
		AuthoredAt: merged, URL: r.repo.URL + "/commit/" + mergeSHA, IssueKeys: keys})
	// Main gains the branch's commits and the merge, on top of the last merge.
	b.Push = &devops.Push{RepositoryID: r.repo.ID, Ref: "refs/heads/main", Before: r.head, After: mergeSHA,
		CommitSHAs: append(append([]string{}, shas...), mergeSHA), Created: r.head == "", PushedAt: merged}
	r.head = mergeSHA
	pr.State, pr.MergedAt, pr.UpdatedAt, pr.MergeCommitSHA = devops.PullRequestMerged, merged, merged, mergeSHA
	pr.Reviewers[0].Approval = devops.ApprovalApproved
	br.Deleted, br.UpdatedAt = true, merged
	b.Branches, b.PullRequests = []devops.Branch{br}, []devops.PullRequest{pr}
	b.Builds = append(b.Builds, h.build(r, mergeSHA, "refs/heads/main", devops.BuildSuccessful, merged.Add(2*time.Minute), keys))

	b.Deployments = append(b.Deployments, h.deployment(r, "development", mergeSHA, merged.Add(15*time.Minute), devops.DeploymentSuccessful))
	staged := merged.Add(time.Duration(2+h.rnd.IntN(4)) * time.Hour)
	b.Deployments = append(b.Deployments, h.deployment(r, "staging", mergeSHA, staged, devops.DeploymentSuccessful))
	ev.Issue.UpdatedAt = staged
	if plan == "staging" {
		return is, b, ev
	}
	released := staged.Add(time.Duration(18+h.rnd.IntN(12)) * time.Hour)
	if n%20 == 3 {
		// A failed release, retried once the health check was fixed.
		b.Deployments = append(b.Deployments, h.deployment(r, "production", mergeSHA, released, devops.DeploymentFailed))
		released = released.Add(2 * time.Hour)
	}
	prod := h.deployment(r, "production", mergeSHA, released, devops.DeploymentSuccessful)
	b.Deployments = append(b.Deployments, prod)
	if n%8 == 5 {
		opened := prod.FinishedAt.Add(2 * time.Hour)
		key := prod.Key()
		id := fmt.Sprintf("PLT%05d", n)
		b.Incidents = append(b.Incidents, devops.Incident{SourceID: id, Title: "Elevated errors in " + p.service + " after release",
			Severity: "P2", Status: devops.IncidentResolved, Service: p.service, URL: "https://loadtest.pagerduty.com/incidents/" + id,
			OpenedAt: opened, ResolvedAt: opened.Add(90 * time.Minute), UpdatedAt: opened.Add(90 * time.Minute),
			Deployment: &key, IssueKeys: keys})
	}
	done := prod.FinishedAt.Add(30 * time.Minute)
	ev.Issue.StatusName, ev.Issue.StatusCategory, ev.Issue.UpdatedAt = "Done", "done", done
	ev.Transitions = append(ev.Transitions, store.JiraTransition{FromStatus: "In Review", ToStatus: "Done", ToCategory: "done", At: done})
	return is, b, ev
}

// build is one finished CI run of sha.
func (h *panelHistory) build(r *panelRepo, sha, ref string, state devops.BuildState, at time.Time, keys []string) devops.Build {
	r.builds++
	finished := at.Add(time.Duration(4+h.rnd.IntN(8)) * time.Minute)
	total := 380 + int(r.builds%40)
	tests := &devops.TestSummary{Total: total, Passed: total}
	if state == devops.BuildFailed {
		tests.Passed, tests.Failed = total-2, 2
	}
	return devops.Build{PipelineID: r.repo.ID + "/ci", PipelineName: "CI", BuildNumber: r.builds, State: state,
		RepositoryID: r.repo.ID, CommitSHA: sha, Ref: ref, URL: fmt.Sprintf("%s/actions/runs/%d", r.repo.URL, 5100000+r.builds),
		StartedAt: at, FinishedAt: finished, UpdatedAt: finished, Tests: tests, IssueKeys: keys}
}

// deployment is one deployment of sha to env, finished a few minutes after at.
func (h *panelHistory) deployment(r *panelRepo, env, sha string, at time.Time, state devops.DeploymentState) devops.Deployment {
	typ := map[string]devops.EnvironmentType{"development": devops.EnvironmentDevelopment,
		"staging": devops.EnvironmentStaging, "production": devops.EnvironmentProduction}[env]
	r.deploys[env]++
	seq := r.deploys[env]
	finished := at.Add(time.Duration(3+h.rnd.IntN(6)) * time.Minute)
	host := r.project.service + ".loadtest.example"
	if env != "production" {
		host = env + "." + host
	}
	return devops.Deployment{PipelineID: "deploy-" + r.project.service, PipelineName: "Deploy " + r.project.service,
		EnvironmentID: env, EnvironmentName: env, EnvironmentType: typ, EnvironmentBasis: devops.BasisProvider,
		EnvironmentURL: "https://" + host, SequenceNumber: seq, State: state, RepositoryID: r.repo.ID, CommitSHA: sha,
		Ref: "main", Service: r.project.service,
		URL:       fmt.Sprintf("https://deploy.loadtest.example/%s/%s/%d", r.project.service, env, seq),
		StartedAt: at, FinishedAt: finished, UpdatedAt: finished}
}

func indexOf(p devops.Person) int {
	for i, q := range panelPeople {
		if q.Username == p.Username {
			return i
		}
	}
	return 0
}
