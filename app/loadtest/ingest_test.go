package loadtest

import (
	"io"
	"testing"
)

// BenchmarkGitHubPushes measures building one signed 10-commit push request:
// the load generator's own cost, which runs on the same machine as the
// server during a load test and so comes out of the server's CPU budget.
func BenchmarkGitHubPushes(b *testing.B) {
	gen, err := GitHubPushes{BaseURL: "http://127.0.0.1:8080", Sources: testSources(), Commits: 10, RunID: "bench"}.Generator()
	if err != nil {
		b.Fatal(err)
	}
	next := gen(0)
	b.ReportAllocs()
	for b.Loop() {
		req, err := next()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			b.Fatal(err)
		}
	}
}
