package web

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/templates"
)

// releaseNotesView groups shipped issues by issue type, most frequent type
// first, and the issues of a type in the order they shipped.
func releaseNotesView(issues []store.ShippedIssue, more bool, rangeText, jiraURL string, now time.Time) templates.ReleaseNotesView {
	v := templates.ReleaseNotesView{Range: rangeText, Total: len(issues)}
	if more {
		v.Omitted = 1 // at least one more; the store does not count past its bound
	}
	groups := map[string]*templates.ReleaseNoteGroup{}
	var order []string
	for _, si := range issues {
		kind, it := "Other", templates.ReleaseNoteItem{Key: si.Key, URL: issueURL(jiraURL, si.Key), Shipped: moment(si.DeployedAt, now)}
		if is := si.Issue; is != nil {
			kind = cmp.Or(strings.TrimSpace(is.IssueType), kind)
			it.Summary, it.Status = is.Summary, is.StatusName
		}
		g := groups[kind]
		if g == nil {
			g = &templates.ReleaseNoteGroup{Type: kind}
			groups[kind] = g
			order = append(order, kind)
		}
		g.Issues = append(g.Issues, it)
	}
	slices.SortStableFunc(order, func(a, b string) int {
		// "Other" last; otherwise the larger group first, then by name.
		if (a == "Other") != (b == "Other") {
			if a == "Other" {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(len(groups[b].Issues), len(groups[a].Issues)), cmp.Compare(a, b))
	})
	for _, k := range order {
		v.Groups = append(v.Groups, *groups[k])
	}
	return v
}
