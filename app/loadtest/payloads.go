// Package loadtest generates realistic traffic for Keyline: signed webhook
// deliveries in the providers' shapes, for the Go benchmarks and the
// `keyline loadtest` command.
package loadtest

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"time"
)

// Repo is one synthetic GitHub repository whose main branch the generator
// pushes to, commit after commit, so pushes chain like real history.
type Repo struct {
	ID       int64
	FullName string
	// Project is the Jira project key used in commit messages.
	Project string
	head    string
	seq     uint64
}

// NewRepo returns a repository with no pushes yet.
func NewRepo(id int64, fullName, project string) *Repo {
	return &Repo{ID: id, FullName: fullName, Project: project}
}

// Push returns the body of a GitHub push event adding n commits to main on
// top of the previous push, and a delivery id unique to it. Every other
// commit names an issue key, as real histories roughly do. Not safe for
// concurrent use on one Repo.
func (r *Repo) Push(n int, at time.Time) (body []byte, deliveryID string) {
	type author struct {
		Name     string `json:"name"`
		Email    string `json:"email"`
		Username string `json:"username"`
	}
	type commit struct {
		ID        string   `json:"id"`
		Distinct  bool     `json:"distinct"`
		Message   string   `json:"message"`
		Timestamp string   `json:"timestamp"`
		URL       string   `json:"url"`
		Author    author   `json:"author"`
		Added     []string `json:"added"`
		Removed   []string `json:"removed"`
		Modified  []string `json:"modified"`
	}
	before := r.head
	if before == "" {
		before = "0000000000000000000000000000000000000000"
	}
	html := "https://github.com/" + r.FullName
	commits := make([]commit, n)
	for i := range commits {
		r.seq++
		sum := sha1.Sum(fmt.Appendf(nil, "%s/%d", r.FullName, r.seq))
		id := hex.EncodeToString(sum[:])
		msg := fmt.Sprintf("Tidy module %d", r.seq)
		if r.seq%2 == 0 {
			msg = fmt.Sprintf("%s-%d: change the checkout flow (step %d)\n\nLonger explanation of the change.", r.Project, 1+r.seq%500, r.seq)
		}
		commits[i] = commit{ID: id, Distinct: true, Message: msg, Timestamp: at.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
			URL: html + "/commit/" + id, Author: author{Name: "Ada Lovelace", Email: "ada@example.com", Username: "ada"},
			Added: []string{}, Removed: []string{}, Modified: []string{"checkout.go"}}
	}
	r.head = commits[n-1].ID
	payload := map[string]any{
		"ref": "refs/heads/main", "before": before, "after": r.head,
		"created": before == "0000000000000000000000000000000000000000", "deleted": false, "forced": false,
		"compare": html + "/compare/" + before[:12] + "..." + r.head[:12],
		"repository": map[string]any{"id": r.ID, "name": path.Base(r.FullName), "full_name": r.FullName,
			"html_url": html, "default_branch": "main"},
		"pusher":      map[string]any{"name": "ada", "email": "ada@example.com"},
		"commits":     commits,
		"head_commit": commits[n-1],
	}
	body, err := json.Marshal(payload)
	if err != nil {
		panic(err) // only plain values above
	}
	return body, fmt.Sprintf("%d-%d", r.ID, r.seq)
}
