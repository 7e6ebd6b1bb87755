// Package loadtest generates realistic traffic for Keyline: signed webhook
// deliveries in the providers' shapes, for the Go benchmarks and the
// `keyline loadtest` command.
package loadtest

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"path"
	"strconv"
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
//
// The body is what encoding/json makes of the payload (keys in the order it
// writes them; TestPushMatchesEncodingJSON holds it to that), written
// directly: the generator runs on the server's machine during a load test,
// and marshalling a map of the payload by reflection was about a fifth of
// its CPU.
func (r *Repo) Push(n int, at time.Time) (body []byte, deliveryID string) {
	const zero = "0000000000000000000000000000000000000000"
	before := r.head
	if before == "" {
		before = zero
	}
	html := "https://github.com/" + r.FullName
	ids := make([]string, n)
	var key []byte
	for i := range ids {
		key = strconv.AppendUint(append(append(key[:0], r.FullName...), '/'), r.seq+uint64(i)+1, 10)
		sum := sha1.Sum(key)
		ids[i] = hex.EncodeToString(sum[:])
	}
	r.head = ids[n-1]
	b := make([]byte, 0, 1024+n*512)
	b = appendString(append(b, `{"after":`...), r.head)
	b = appendString(append(b, `,"before":`...), before)
	b = append(b, `,"commits":[`...)
	var head []byte
	for i, id := range ids {
		r.seq++
		if i > 0 {
			b = append(b, ',')
		}
		start := len(b)
		b = r.appendCommit(b, id, html, at.Add(time.Duration(i)*time.Second))
		head = b[start:]
	}
	b = append(b, `],"compare":`...)
	b = appendString(b, html+"/compare/"+before[:12]+"..."+r.head[:12])
	b = strconv.AppendBool(append(b, `,"created":`...), before == zero)
	b = append(b, `,"deleted":false,"forced":false,"head_commit":`...)
	b = append(b, head...)
	b = append(b, `,"pusher":{"email":"ada@example.com","name":"ada"},"ref":"refs/heads/main","repository":{"default_branch":"main","full_name":`...)
	b = appendString(b, r.FullName)
	b = appendString(append(b, `,"html_url":`...), html)
	b = strconv.AppendInt(append(b, `,"id":`...), r.ID, 10)
	b = appendString(append(b, `,"name":`...), path.Base(r.FullName))
	b = append(b, `}}`...)
	return b, strconv.FormatInt(r.ID, 10) + "-" + strconv.FormatUint(r.seq, 10)
}

// appendCommit appends commit id, the Repo's r.seq-th, as encoding/json
// writes it.
func (r *Repo) appendCommit(b []byte, id, html string, at time.Time) []byte {
	b = appendString(append(b, `{"id":`...), id)
	b = append(b, `,"distinct":true,"message":"`...)
	if r.seq%2 == 0 {
		b = appendEscaped(b, r.Project)
		b = strconv.AppendUint(append(b, '-'), 1+r.seq%500, 10)
		b = strconv.AppendUint(append(b, `: change the checkout flow (step `...), r.seq, 10)
		b = append(b, `)\n\nLonger explanation of the change."`...)
	} else {
		b = strconv.AppendUint(append(b, `Tidy module `...), r.seq, 10)
		b = append(b, '"')
	}
	b = at.AppendFormat(append(b, `,"timestamp":"`...), time.RFC3339)
	b = appendString(append(b, `","url":`...), html+"/commit/"+id)
	return append(b, `,"author":{"name":"Ada Lovelace","email":"ada@example.com","username":"ada"},"added":[],"removed":[],"modified":["checkout.go"]}`...)
}

// appendString appends s as a JSON string, exactly as encoding/json writes it.
func appendString(b []byte, s string) []byte {
	return append(appendEscaped(append(b, '"'), s), '"')
}

// appendEscaped appends s as the inside of a JSON string, exactly as
// encoding/json writes it: plain text as it is, anything needing an escape
// through json.Marshal.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil {
				panic(err) // a string always marshals
			}
			return append(b, q[1:len(q)-1]...)
		}
	}
	return append(b, s...)
}
