package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
)

// BenchmarkReleaseDaysWrite measures what keeping the day rollup
// (migration 00013) costs the writes that change release facts, on
// PostgreSQL: a successful deployment of ten new commits naming issues of
// two projects, and a Jira issue event that moves a shipped issue's start.
// "rollup=off" runs the same writes with the rollup's triggers disabled.
// Pushes, the deliveries that come by the thousand a second, write no
// facts and are not affected.
func BenchmarkReleaseDaysWrite(b *testing.B) {
	for _, rollup := range []bool{true, false} {
		b.Run(fmt.Sprintf("rollup=%s", map[bool]string{true: "on", false: "off"}[rollup]), func(b *testing.B) {
			ctx := context.Background()
			s := dbtest.PostgresStore(b)
			if !rollup {
				for _, table := range []string{"change_first_deployments", "issue_first_deployments"} {
					if err := s.Exec(ctx, `ALTER TABLE `+table+` DISABLE TRIGGER USER`); err != nil {
						b.Fatal(err)
					}
				}
			}
			tn, err := s.UpsertTenant(ctx, install("bench-days"))
			if err != nil {
				b.Fatal(err)
			}
			src, _, _, err := s.CreateSource(ctx, tn, store.SourceGitHub, "")
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			record := func(batch devops.Batch) {
				n++
				if err := s.RecordEvent(ctx, tn, src.ID, accepted(fmt.Sprint("bench-", n)), &batch); err != nil {
					b.Fatal(err)
				}
			}
			base := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
			prev := ""
			// ship pushes ten commits and deploys them as deployment seq.
			ship := func(seq int64) {
				labels := make([]labelled, 10)
				for i := range labels {
					labels[i] = labelled{fmt.Sprintf("s%d-%d PAY-%d SHOP-%d", seq, i, seq%50, seq%7),
						base.Add(time.Duration(seq) * time.Minute)}
				}
				record(pushAt("main", prev, labels...))
				prev = labels[len(labels)-1].label
				batch := deploy(seq, prev, devops.DeploymentSuccessful, base.Add(time.Duration(seq)*time.Minute+time.Hour))
				batch.Deployments[0].FinishedAt = batch.Deployments[0].UpdatedAt
				record(batch)
			}
			for seq := range int64(20) {
				ship(seq)
			}
			b.Run("deployment", func(b *testing.B) {
				seq := int64(1000)
				for b.Loop() {
					b.StopTimer()
					labels := make([]labelled, 10)
					for i := range labels {
						labels[i] = labelled{fmt.Sprintf("s%d-%d PAY-%d SHOP-%d", seq, i, seq%50, seq%7),
							base.Add(time.Duration(seq%600) * time.Minute)}
					}
					record(pushAt("main", prev, labels...))
					prev = labels[len(labels)-1].label
					batch := deploy(seq, prev, devops.DeploymentSuccessful,
						base.Add(time.Duration(seq%600)*time.Minute+time.Hour))
					batch.Deployments[0].FinishedAt = batch.Deployments[0].UpdatedAt
					b.StartTimer()
					record(batch)
					seq++
				}
			})
			b.Run("issue-event", func(b *testing.B) {
				i := 0
				for b.Loop() {
					i++
					at := base.Add(time.Duration(i) * time.Second)
					err := s.ApplyJiraIssueEvent(ctx, tn, store.JiraIssueEvent{
						Issue: store.JiraIssue{IssueID: fmt.Sprint(i % 50), IssueKey: fmt.Sprintf("PAY-%d", i%50),
							ProjectKey: "PAY", Summary: "s", StatusName: "In Progress",
							StatusCategory: "indeterminate", UpdatedAt: at},
						Transitions: []store.JiraTransition{{FromStatus: "To Do", ToStatus: "In Progress",
							ToCategory: "indeterminate", At: at.Add(-time.Duration(i) * time.Minute)}},
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
