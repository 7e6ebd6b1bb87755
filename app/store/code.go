package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/tenant"
)

// Code entities: repositories, commits, pushes, branches and pull requests.

// BranchID is the id under which a source's branch is stored and linked.
func BranchID(sourceID, repositoryID, name string) string {
	return entityID(sourceID, repositoryID, name)
}

// PullRequestID is the id under which a source's pull request is stored and linked.
func PullRequestID(sourceID, repositoryID, providerID string) string {
	return entityID(sourceID, repositoryID, providerID)
}

func (w *batchWriter) repository(r devops.Repository) error {
	if r.ID == "" {
		return errors.New("repository id is required")
	}
	id, name, url := cleanText(r.ID, maxIDLen), cleanText(r.Name, maxNameLen), cleanURL(r.URL)
	branch := cleanText(r.DefaultBranch, maxNameLen)
	// Insert if new, update only if changed: an upsert would lock the row
	// even when nothing changes, and every push to a busy repository would
	// wait for the one before it to commit.
	err := w.exec(`INSERT INTO repositories (tenant_id, source_id, id, name, url, default_branch, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, source_id, id) DO NOTHING`,
		w.t.ID, w.src, id, name, url, branch, w.s.ts(w.now))
	if err != nil {
		return err
	}
	return w.exec(`UPDATE repositories SET name = ?, url = ?,
			default_branch = CASE WHEN ? <> '' THEN ? ELSE default_branch END, updated_at = ?
		WHERE tenant_id = ? AND source_id = ? AND id = ?
			AND (name <> ? OR url <> ? OR (? <> '' AND default_branch <> ?))`,
		name, url, branch, branch, w.s.ts(w.now), w.t.ID, w.src, id, name, url, branch, branch)
}

// commits records commits with their predecessors in the push that carried
// them, and links them to the keys in their messages. A commit already
// known keeps its row (a hash names fixed content); a predecessor other than
// the one it was first seen with is added to commit_parents.
//
// branch is the branch the push went to (” for commits that came without
// a push to a branch); a commit keeps the branch of its first push, which
// is how a deployment later tells a pull request's commits from others.
func (w *batchWriter) commits(cs []devops.Commit, parents map[string]edge, branch string) error {
	if w.deferring {
		return w.commitsAtOnce(cs, parents, branch)
	}
	rows := make([][]any, 0, len(cs))
	var links [][]any
	at := w.s.ts(w.now)
	for _, c := range cs {
		r, ok := cleanCommit(c, parents)
		if !ok {
			continue
		}
		rows = append(rows, []any{w.t.ID, r.sha, w.src, r.repo, r.message, r.name, r.email, r.username,
			w.s.optTime(c.AuthoredAt), r.url, c.Merge, r.parent.parent, r.parent.gap, keysText(r.keys), at, branch})
		for _, k := range r.keys {
			links = append(links, []any{w.t.ID, k, EntityCommit, r.sha, at})
		}
	}
	stmts, err := valuesStatements(`INSERT INTO commits (tenant_id, sha, source_id, repository_id, message,
			author_name, author_email, author_username, authored_at, url, merge, parent_sha, parent_gap,
			issue_keys, first_seen_at, branch)`,
		`ON CONFLICT (tenant_id, sha) DO NOTHING RETURNING sha`, rows)
	if err != nil {
		return err
	}
	// Which commits are new decides which edges need commit_parents rows.
	var inserted []string
	for _, st := range stmts {
		var shas []string
		if err := w.tx.Raw(st.q, st.args...).Scan(&shas).Error; err != nil {
			return err
		}
		inserted = append(inserted, shas...)
	}
	if err := w.extraParents(parents, inserted); err != nil {
		return err
	}
	return w.insertRows(`INSERT INTO issue_links (tenant_id, issue_key, entity_type, entity_id, created_at)`,
		`ON CONFLICT (tenant_id, issue_key, entity_type, entity_id) DO NOTHING`, links)
}

// cleanCommit is a pushed commit's text columns as both write paths store
// them, its edge and its issue keys; false when its hash is not valid.
func cleanCommit(c devops.Commit, parents map[string]edge) (cleanedCommit, bool) {
	sha := cleanSHA(c.SHA)
	if sha == "" {
		return cleanedCommit{}, false
	}
	return cleanedCommit{
		sha: sha, repo: cleanText(c.RepositoryID, maxIDLen), message: cleanMessage(c.Message, maxMessageLen),
		name: cleanText(c.Author.Name, maxNameLen), email: cleanText(c.Author.Email, maxNameLen),
		username: cleanText(c.Author.Username, maxNameLen), url: cleanURL(c.URL),
		parent: parents[sha], keys: cleanKeys(c.IssueKeys),
	}, true
}

// cleanedCommit is what cleanCommit returns.
type cleanedCommit struct {
	sha, repo, message, name, email, username, url string
	parent                                         edge
	keys                                           []string
}

// commitsAtOnce is commits on the one-statement path (writeCodeAtOnce,
// PostgreSQL only). Each column is bound as one array and unnest turns the
// arrays back into rows: the statement's text is then the same for any
// number of commits, so each connection prepares it once and PostgreSQL
// keeps one generic plan, and a push of 10 commits binds 16 parameters
// instead of 160, which took a fifth of Keyline's CPU per push to encode.
// The unnest calls stand in the select list, where they run in step without
// storing their rows first as unnest(a, b, ...) in FROM does; PostgreSQL's
// CPU per push is the same as with a VALUES row per commit.
func (w *batchWriter) commitsAtOnce(cs []devops.Commit, parents map[string]edge, branch string) error {
	n := len(cs)
	var (
		shas      = make([]string, 0, n)
		repos     = make([]string, 0, n)
		messages  = make([]string, 0, n)
		names     = make([]string, 0, n)
		emails    = make([]string, 0, n)
		usernames = make([]string, 0, n)
		authored  = make([]*time.Time, 0, n)
		urls      = make([]string, 0, n)
		merges    = make([]bool, 0, n)
		parentSHA = make([]string, 0, n)
		gaps      = make([]bool, 0, n)
		keyTexts  = make([]string, 0, n)
		linkKeys  []string
		linkSHAs  []string
	)
	for _, c := range cs {
		r, ok := cleanCommit(c, parents)
		if !ok {
			continue
		}
		var at *time.Time
		if !c.AuthoredAt.IsZero() {
			t := normTime(c.AuthoredAt)
			at = &t
		}
		shas = append(shas, r.sha)
		repos = append(repos, r.repo)
		messages = append(messages, r.message)
		names = append(names, r.name)
		emails = append(emails, r.email)
		usernames = append(usernames, r.username)
		authored = append(authored, at)
		urls = append(urls, r.url)
		merges = append(merges, c.Merge)
		parentSHA = append(parentSHA, r.parent.parent)
		gaps = append(gaps, r.parent.gap)
		keyTexts = append(keyTexts, keysText(r.keys))
		for _, k := range r.keys {
			linkKeys = append(linkKeys, k)
			linkSHAs = append(linkSHAs, r.sha)
		}
	}
	if len(shas) == 0 {
		return nil
	}
	// Deferred, the edge insert names this WITH clause to tell new commits.
	w.deferred = append(w.deferred, statement{name: "new_commits",
		q: `INSERT INTO commits (tenant_id, sha, source_id, repository_id, message,
			author_name, author_email, author_username, authored_at, url, merge, parent_sha, parent_gap,
			issue_keys, first_seen_at, branch)
		SELECT ?, u.sha, ?, u.repository_id, u.message, u.author_name, u.author_email, u.author_username,
			u.authored_at, u.url, u.merge, u.parent_sha, u.parent_gap, u.issue_keys, ?, ?
		FROM (SELECT unnest(?::text[]) AS sha, unnest(?::text[]) AS repository_id, unnest(?::text[]) AS message,
			unnest(?::text[]) AS author_name, unnest(?::text[]) AS author_email, unnest(?::text[]) AS author_username,
			unnest(?::timestamptz[]) AS authored_at, unnest(?::text[]) AS url, unnest(?::boolean[]) AS merge,
			unnest(?::text[]) AS parent_sha, unnest(?::boolean[]) AS parent_gap, unnest(?::text[]) AS issue_keys) AS u
		ON CONFLICT (tenant_id, sha) DO NOTHING RETURNING sha`,
		args: []any{w.t.ID, w.src, w.now, branch,
			shas, repos, messages, names, emails, usernames, authored, urls, merges, parentSHA, gaps, keyTexts}})
	// Edges of commits known before this push; see extraParents.
	var edgeSHA, edgeParent []string
	var edgeGap []bool
	for sha, e := range parents {
		edgeSHA, edgeParent, edgeGap = append(edgeSHA, sha), append(edgeParent, e.parent), append(edgeGap, e.gap)
	}
	if len(edgeSHA) > 0 {
		w.deferred = append(w.deferred, statement{
			q: `INSERT INTO commit_parents (tenant_id, sha, parent_sha, gap)
			SELECT ?, v.sha, v.parent_sha, v.gap
			FROM (SELECT unnest(?::text[]) AS sha, unnest(?::text[]) AS parent_sha, unnest(?::boolean[]) AS gap) AS v
			WHERE v.sha NOT IN (SELECT sha FROM new_commits)
			ON CONFLICT (tenant_id, sha, parent_sha) DO NOTHING`,
			args: []any{w.t.ID, edgeSHA, edgeParent, edgeGap}})
	}
	w.deferLinks(EntityCommit, linkKeys, linkSHAs)
	return nil
}

// deferLinks adds the links of keys[i] to entity ids[i] to the one
// statement, as one array-bound insert (see commitsAtOnce).
func (w *batchWriter) deferLinks(entityType string, keys, ids []string) {
	if len(keys) == 0 {
		return
	}
	w.deferred = append(w.deferred, statement{
		q: `INSERT INTO issue_links (tenant_id, issue_key, entity_type, entity_id, created_at)
		SELECT ?, u.issue_key, ?, u.entity_id, ?
		FROM (SELECT unnest(?::text[]) AS issue_key, unnest(?::text[]) AS entity_id) AS u
		ON CONFLICT (tenant_id, issue_key, entity_type, entity_id) DO NOTHING`,
		args: []any{w.t.ID, entityType, w.now, keys, ids}})
}

// edge is a commit's predecessor as a push shows it.
type edge struct {
	parent string
	gap    bool
}

// pushParents returns the commit order a push reveals: each listed commit
// follows the one before it, and the first follows the push's "before" —
// unless the push created the ref or was forced, when the first commit's
// predecessor is not known. A truncated push (the provider listed only its
// newest commits) still ties its first listed commit to "before", as a gap
// edge: the range walk then finds the right end but knows it missed commits.
func pushParents(p *devops.Push) map[string]edge {
	if p == nil {
		return nil
	}
	before := cleanSHA(p.Before)
	out := map[string]edge{}
	prev := ""
	for i, sha := range p.CommitSHAs {
		if sha = cleanSHA(sha); sha == "" {
			continue
		}
		switch {
		case i > 0 && prev != "" && prev != sha:
			out[sha] = edge{parent: prev}
		case i == 0 && before != "" && !p.Created && !p.Forced && before != sha:
			out[sha] = edge{parent: before, gap: p.Truncated}
		}
		prev = sha
	}
	return out
}

// extraParents records the predecessors of commits that were known before
// this batch: a new commit keeps its predecessor in its own row, but a
// known one (a feature branch's commit now merged to main) may follow a
// different commit here, and the range walk must see both. Whether a
// commit is new comes from the commit insert itself (inserted; on the
// one-statement path its RETURNING, see commitsAtOnce), never from reading
// the commits table, whose plan would depend on its statistics on the hot
// path. An edge that repeats the stored one is harmless: the walk folds it.
func (w *batchWriter) extraParents(parents map[string]edge, inserted []string) error {
	isNew := map[string]bool{}
	for _, sha := range inserted {
		isNew[sha] = true
	}
	var sb strings.Builder
	args := []any{w.t.ID}
	sb.WriteString(`INSERT INTO commit_parents (tenant_id, sha, parent_sha, gap)
		SELECT ?, v.column1, v.column2, v.column3 FROM (VALUES `)
	n := 0
	for sha, e := range parents {
		if isNew[sha] {
			continue
		}
		if n > 0 {
			sb.WriteString(", ")
		}
		n++
		sb.WriteString("(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BOOLEAN))")
		args = append(args, sha, e.parent, e.gap)
	}
	if n == 0 {
		return nil
	}
	// SQLite needs a WHERE between a SELECT and ON CONFLICT, or it reads the
	// ON as part of a join.
	sb.WriteString(") AS v WHERE TRUE ON CONFLICT (tenant_id, sha, parent_sha) DO NOTHING")
	return w.tx.Exec(sb.String(), args...).Error
}

// push records a push, and marks its branch deleted when the push deleted it.
func (w *batchWriter) push(p devops.Push) error {
	repo := cleanText(p.RepositoryID, maxIDLen)
	ref := cleanText(p.Ref, maxRefLen)
	after := cleanSHA(p.After)
	if after == "" {
		return errors.New("push has no valid after hash")
	}
	before := cleanSHA(p.Before)
	n := 0
	for _, sha := range p.CommitSHAs {
		if cleanSHA(sha) != "" {
			n++
		}
	}
	total := max(p.TotalCommits, n)
	pushedAt := p.PushedAt
	if pushedAt.IsZero() {
		pushedAt = w.now
	}
	err := w.exec(`INSERT INTO pushes (tenant_id, source_id, repository_id, ref, before_sha, after_sha,
			commit_count, total_commits, truncated, forced, created, deleted, pushed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, source_id, pushed_at, ref, after_sha) DO NOTHING`,
		w.t.ID, w.src, repo, ref, before, after, n, total, p.Truncated || total > n,
		p.Forced, p.Created, p.Deleted, w.s.ts(pushedAt))
	if err != nil {
		return err
	}
	if name, ok := devops.BranchOfRef(p.Ref); ok && p.Deleted {
		return w.exec(`UPDATE branches SET deleted = ?, updated_at = ?
			WHERE tenant_id = ? AND id = ? AND updated_at <= ?`,
			true, w.s.ts(w.now), w.t.ID, BranchID(w.src, repo, name), w.s.ts(w.now))
	}
	return nil
}

// branch records a branch; the newest report wins, by arrival.
func (w *batchWriter) branch(b devops.Branch) error {
	name := cleanText(b.Name, maxRefLen)
	if name == "" {
		return errors.New("branch name is required")
	}
	repo := cleanText(b.RepositoryID, maxIDLen)
	id := BranchID(w.src, repo, name)
	keys := cleanKeys(b.IssueKeys)
	at := b.UpdatedAt
	if at.IsZero() {
		at = w.now
	}
	err := w.exec(`INSERT INTO branches (tenant_id, id, source_id, repository_id, name, url,
			last_commit_sha, issue_keys, deleted, updated_at, first_commit_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, id) DO UPDATE SET
			url = CASE WHEN excluded.url <> '' THEN excluded.url ELSE branches.url END,
			last_commit_sha = CASE WHEN excluded.last_commit_sha <> '' THEN excluded.last_commit_sha
				ELSE branches.last_commit_sha END,
			issue_keys = excluded.issue_keys, deleted = excluded.deleted, updated_at = excluded.updated_at,
			first_commit_at = CASE WHEN branches.first_commit_at IS NULL
					OR excluded.first_commit_at < branches.first_commit_at
				THEN COALESCE(excluded.first_commit_at, branches.first_commit_at)
				ELSE branches.first_commit_at END
		WHERE branches.updated_at <= excluded.updated_at`,
		w.t.ID, id, w.src, repo, name, cleanURL(b.URL), cleanSHA(b.LastCommitSHA), keysText(keys),
		b.Deleted, w.s.ts(at), w.s.optTime(b.FirstCommitAt))
	if err != nil {
		return err
	}
	return w.addLinks(EntityBranch, id, keys)
}

// prColumns is the select list scanPullRequest reads.
const prColumns = `repository_id, provider_id, number, title, body_excerpt, state, source_branch,
	destination_branch, author_name, author_email, author_username, reviewers, url, merge_commit_sha,
	issue_keys, created_at, merged_at, closed_at, updated_at`

func scanPullRequest(r rowScanner) (*devops.PullRequest, error) {
	var (
		pr                               devops.PullRequest
		state, reviewers, keys           string
		created, merged, closed, updated sql.NullTime
	)
	err := r.Scan(&pr.RepositoryID, &pr.ID, &pr.Number, &pr.Title, &pr.BodyExcerpt, &state, &pr.SourceBranch,
		&pr.DestinationBranch, &pr.Author.Name, &pr.Author.Email, &pr.Author.Username, &reviewers, &pr.URL,
		&pr.MergeCommitSHA, &keys, &created, &merged, &closed, &updated)
	if err != nil {
		return nil, err
	}
	pr.State = devops.PullRequestState(state)
	if err := json.Unmarshal([]byte(reviewers), &pr.Reviewers); err != nil {
		return nil, fmt.Errorf("reviewers of pull request %s: %w", pr.ID, err)
	}
	pr.IssueKeys = textKeys(keys)
	pr.CreatedAt, pr.MergedAt, pr.ClosedAt, pr.UpdatedAt = nullTime(created), nullTime(merged), nullTime(closed), nullTime(updated)
	return &pr, nil
}

// cleanPullRequest bounds what a delivery says of a pull request.
func cleanPullRequest(pr devops.PullRequest) devops.PullRequest {
	pr.RepositoryID = cleanText(pr.RepositoryID, maxIDLen)
	pr.ID = cleanText(pr.ID, maxIDLen)
	pr.Title = cleanText(pr.Title, maxTitleLen)
	pr.BodyExcerpt = cleanMessage(pr.BodyExcerpt, devops.MaxExcerptLen)
	pr.SourceBranch = cleanText(pr.SourceBranch, maxRefLen)
	pr.DestinationBranch = cleanText(pr.DestinationBranch, maxRefLen)
	pr.Author = cleanPerson(pr.Author)
	pr.URL = cleanURL(pr.URL)
	pr.MergeCommitSHA = cleanSHA(pr.MergeCommitSHA)
	pr.IssueKeys = cleanKeys(pr.IssueKeys)
	var reviewers []devops.Reviewer
	for _, r := range pr.Reviewers {
		r.Person = cleanPerson(r.Person)
		if reviewerKey(r) != "" && r.Approval.Valid() && len(reviewers) < maxReviewers {
			reviewers = append(reviewers, r)
		}
	}
	pr.Reviewers = reviewers
	return pr
}

// maxReviewers bounds the reviewers kept per pull request.
const maxReviewers = 100

func cleanPerson(p devops.Person) devops.Person {
	return devops.Person{Name: cleanText(p.Name, maxNameLen), Email: cleanText(p.Email, maxNameLen),
		Username: cleanText(p.Username, maxNameLen)}
}

// reviewerKey identifies a reviewer across events, which name them in
// different ways (a review event has the username, a reviewers list may
// have only a display name).
func reviewerKey(r devops.Reviewer) string {
	for _, s := range []string{r.Username, r.Email, r.Name} {
		if s != "" {
			return strings.ToLower(s)
		}
	}
	return ""
}

// mergePullRequest combines the stored pull request with a newly delivered
// version. The newer event (devops.Advance) decides state and text; blanks
// in it keep what was known; reviewers' verdicts from the newer event
// replace older ones, and an older event can only add reviewers not yet
// known.
func mergePullRequest(cur, next devops.PullRequest) devops.PullRequest {
	newer := devops.Advance(cur.State, cur.UpdatedAt, next.State, next.UpdatedAt)
	out := cur
	if newer {
		out = next
		out.BodyExcerpt = firstSet(next.BodyExcerpt, cur.BodyExcerpt)
		out.URL = firstSet(next.URL, cur.URL)
		out.MergeCommitSHA = firstSet(next.MergeCommitSHA, cur.MergeCommitSHA)
		if next.Author == (devops.Person{}) {
			out.Author = cur.Author
		}
		if next.MergedAt.IsZero() {
			out.MergedAt = cur.MergedAt
		}
		if len(next.IssueKeys) == 0 && next.Title == "" {
			out.IssueKeys = cur.IssueKeys
		}
	}
	out.CreatedAt = earlierOf(cur.CreatedAt, next.CreatedAt)
	out.UpdatedAt = laterOf(cur.UpdatedAt, next.UpdatedAt)
	byKey := map[string]int{}
	out.Reviewers = append([]devops.Reviewer(nil), cur.Reviewers...)
	for i, r := range out.Reviewers {
		byKey[reviewerKey(r)] = i
	}
	for _, r := range next.Reviewers {
		i, known := byKey[reviewerKey(r)]
		switch {
		case !known && len(out.Reviewers) < maxReviewers:
			byKey[reviewerKey(r)] = len(out.Reviewers)
			out.Reviewers = append(out.Reviewers, r)
		case known && newer:
			out.Reviewers[i] = r
		}
	}
	return out
}

func firstSet(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (w *batchWriter) pullRequest(in devops.PullRequest) error {
	next := cleanPullRequest(in)
	if next.ID == "" || !next.State.Valid() {
		return errors.New("pull request id and a valid state are required")
	}
	id := PullRequestID(w.src, next.RepositoryID, next.ID)
	if next.UpdatedAt.IsZero() {
		next.UpdatedAt = w.now
	}
	reviewers, err := json.Marshal(nonNil(next.Reviewers))
	if err != nil {
		return err
	}
	inserted, err := w.insertIfAbsent(`INSERT INTO pull_requests (tenant_id, id, source_id, `+prColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, id) DO NOTHING`,
		w.prArgs(id, next, reviewers)...)
	if err != nil {
		return err
	}
	pr := next
	if !inserted {
		cur, err := scanPullRequest(queryRow(w.tx, `SELECT `+prColumns+` FROM pull_requests
			WHERE tenant_id = ? AND id = ?`+w.forUpdate(), w.t.ID, id))
		if err != nil {
			return err
		}
		pr = mergePullRequest(*cur, next)
		if reviewers, err = json.Marshal(nonNil(pr.Reviewers)); err != nil {
			return err
		}
		args := w.prArgs(id, pr, reviewers)[3:]
		err = w.tx.Exec(`UPDATE pull_requests SET (`+prColumns+`) =
			(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			WHERE tenant_id = ? AND id = ?`, append(args, w.t.ID, id)...).Error
		if err != nil {
			return err
		}
	}
	if err := w.setLinks(EntityPullRequest, id, pr.IssueKeys); err != nil {
		return err
	}
	if pr.State != devops.PullRequestMerged || pr.MergeCommitSHA == "" {
		return nil
	}
	// Deployments that already shipped the merge commit now reach the pull
	// request's issues too, and their changes regroup around it.
	var deployments []string
	err = w.tx.Raw(`SELECT DISTINCT deployment_id FROM deployment_commits
		WHERE tenant_id = ? AND sha = ? LIMIT ?`, w.t.ID, pr.MergeCommitSHA, maxRelinks).Scan(&deployments).Error
	if err != nil {
		return err
	}
	for _, d := range deployments {
		if err := w.addLinks(EntityDeployment, d, pr.IssueKeys); err != nil {
			return err
		}
		if err := w.addLinkedProjects(d, pr.IssueKeys); err != nil {
			return err
		}
	}
	if err := w.recordFirstDeploymentsOf(deployments); err != nil {
		return fmt.Errorf("release facts: %w", err)
	}
	return nil
}

func (w *batchWriter) prArgs(id string, pr devops.PullRequest, reviewers []byte) []any {
	return []any{w.t.ID, id, w.src, pr.RepositoryID, pr.ID, pr.Number, pr.Title, pr.BodyExcerpt, string(pr.State),
		pr.SourceBranch, pr.DestinationBranch, pr.Author.Name, pr.Author.Email, pr.Author.Username,
		string(reviewers), pr.URL, pr.MergeCommitSHA, keysText(pr.IssueKeys), w.s.optTime(pr.CreatedAt),
		w.s.optTime(pr.MergedAt), w.s.optTime(pr.ClosedAt), w.s.optTime(pr.UpdatedAt)}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// PullRequest returns t's pull request id (see PullRequestID), or an error
// wrapping ErrNotFound.
func (s *Store) PullRequest(ctx context.Context, t *tenant.Tenant, id string) (*devops.PullRequest, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: pull request: %w", err)
	}
	pr, err := scanPullRequest(queryRow(s.db.WithContext(ctx), `SELECT `+prColumns+` FROM pull_requests
		WHERE tenant_id = ? AND id = ?`, t.ID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: pull request: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: pull request: %w", err)
	}
	return pr, nil
}

// Commit returns t's commit sha, or an error wrapping ErrNotFound.
func (s *Store) Commit(ctx context.Context, t *tenant.Tenant, sha string) (*devops.Commit, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: commit: %w", err)
	}
	var (
		c    devops.Commit
		keys string
		at   sql.NullTime
	)
	err := queryRow(s.db.WithContext(ctx), `SELECT sha, repository_id, message, author_name, author_email,
			author_username, authored_at, url, merge, issue_keys
		FROM commits WHERE tenant_id = ? AND sha = ?`, t.ID, sha,
	).Scan(&c.SHA, &c.RepositoryID, &c.Message, &c.Author.Name, &c.Author.Email, &c.Author.Username,
		&at, &c.URL, &c.Merge, &keys)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: commit: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: commit: %w", err)
	}
	c.AuthoredAt = nullTime(at)
	c.IssueKeys = textKeys(keys)
	return &c, nil
}

// Branch returns t's branch id (see BranchID), or an error wrapping ErrNotFound.
func (s *Store) Branch(ctx context.Context, t *tenant.Tenant, id string) (*devops.Branch, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: branch: %w", err)
	}
	var (
		b    devops.Branch
		keys string
	)
	var first sql.NullTime
	err := queryRow(s.db.WithContext(ctx), `SELECT repository_id, name, url, last_commit_sha, issue_keys,
			deleted, updated_at, first_commit_at
		FROM branches WHERE tenant_id = ? AND id = ?`, t.ID, id,
	).Scan(&b.RepositoryID, &b.Name, &b.URL, &b.LastCommitSHA, &keys, &b.Deleted, &b.UpdatedAt, &first)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: branch: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: branch: %w", err)
	}
	b.UpdatedAt = fromDB(b.UpdatedAt)
	b.IssueKeys = textKeys(keys)
	b.FirstCommitAt = nullTime(first)
	return &b, nil
}
