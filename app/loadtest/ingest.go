package loadtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
	"time"

	"github.com/keyline/keyline/app/ingest"
)

// Source is one webhook source to deliver to: its URL token and signing
// secret, as store.CreateSource returned them.
type Source struct {
	Token  string
	Secret string
}

// GitHubPushes generates signed GitHub push deliveries to Keyline's ingest
// endpoint, spread round-robin over Sources.
type GitHubPushes struct {
	// BaseURL is where Keyline listens, e.g. http://127.0.0.1:8080; each
	// delivery goes to BaseURL/ingest/<token>.
	BaseURL string
	Sources []Source
	// Commits is the number of commits per push (at least 1).
	Commits int
	// RunID makes repository names, ids and delivery ids unique to one run,
	// so that re-running against the same database writes new history
	// rather than replaying the last run's commits.
	RunID string
}

// Generator returns the generator for Run. Each worker owns one Repo per
// source, so its pushes chain on each repository's main branch and no Repo
// is shared between goroutines.
func (g GitHubPushes) Generator() (Generator, error) {
	if len(g.Sources) == 0 {
		return nil, errors.New("loadtest: no sources to deliver to")
	}
	if g.Commits < 1 {
		return nil, errors.New("loadtest: a push needs at least one commit")
	}
	base := strings.TrimSuffix(g.BaseURL, "/")
	h := fnv.New32a()
	h.Write([]byte(g.RunID))
	// Repository ids stay distinct across runs and across (worker, source).
	idBase := int64(h.Sum32()) * 1_000_000
	n := len(g.Sources)
	return func(w int) NextFunc {
		repos := make([]*Repo, n)
		urls := make([]string, n)
		secrets := make([][]byte, n)
		for i, src := range g.Sources {
			repos[i] = NewRepo(idBase+int64(w*n+i), fmt.Sprintf("loadtest-%s/service-%d-%d", g.RunID, w, i), "LT")
			urls[i] = base + "/ingest/" + src.Token
			secrets[i] = []byte(src.Secret)
		}
		next := w % n // workers start on different sources
		return func() (*http.Request, error) {
			i := next
			next = (next + 1) % n
			body, id := repos[i].Push(g.Commits, time.Now())
			req, err := http.NewRequest(http.MethodPost, urls[i], bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "GitHub-Hookshot/keyline-loadtest")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", g.RunID+"-"+id)
			req.Header.Set(ingest.HeaderGitHubSignature, ingest.SignatureSHA256(secrets[i], body))
			return req, nil
		}
	}, nil
}

// CheckIngest accepts 200 answers whose outcome is "accepted" and labels
// each answer with its outcome, or with its status when refused. A
// "duplicate" or "ignored" answer is a failure here: every generated
// delivery is new and meant to be stored.
func CheckIngest(status int, body []byte) (string, error) {
	var ans struct {
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	}
	_ = json.Unmarshal(body, &ans) // a body that is not Keyline's JSON leaves both empty
	if status != http.StatusOK {
		if ans.Error == "" {
			ans.Error = http.StatusText(status)
		}
		return fmt.Sprintf("status %d", status), fmt.Errorf("status %d: %s", status, ans.Error)
	}
	if ans.Outcome != "accepted" {
		return ans.Outcome, fmt.Errorf("status 200 but outcome %q, want accepted", ans.Outcome)
	}
	return ans.Outcome, nil
}
