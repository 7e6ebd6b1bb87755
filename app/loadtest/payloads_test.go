package loadtest

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"testing"
	"time"
)

// pushByEncodingJSON is how Push built its body before it wrote it
// directly: the payload as a map, marshalled by encoding/json.
func pushByEncodingJSON(r *Repo, n int, at time.Time) (body []byte, deliveryID string) {
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
		panic(err)
	}
	return body, fmt.Sprintf("%d-%d", r.ID, r.seq)
}

func TestPushMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 25, 15, 4, 5, 0, time.FixedZone("", 3600))
	for _, tt := range []struct{ name, project string }{
		{"loadtest-run/service-0-1", "LT"},
		{"odd <&> \"names\"/sérvice\t1", "PR<Ä>"},
	} {
		got, want := NewRepo(42, tt.name, tt.project), NewRepo(42, tt.name, tt.project)
		for i, n := range []int{1, 10, 3, 10} {
			gotBody, gotID := got.Push(n, at.Add(time.Duration(i)*time.Hour))
			wantBody, wantID := pushByEncodingJSON(want, n, at.Add(time.Duration(i)*time.Hour))
			if !bytes.Equal(gotBody, wantBody) || gotID != wantID {
				t.Fatalf("%s, push %d of %d commits:\n got %s %s\nwant %s %s", tt.name, i, n, gotID, gotBody, wantID, wantBody)
			}
		}
	}
}
