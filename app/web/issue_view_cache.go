package web

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/templates"
)

// IssueViewCacheTTL bounds how long a rendered issue panel is served from the
// cache. Writes clear the panels they change at once (see
// store.DataVersion); the TTL keeps relative times ("5 min ago") close to
// true and bounds what another replica may serve if an announcement of a
// change is lost.
const IssueViewCacheTTL = 15 * time.Second

// maxCachedView is the largest rendered panel kept, so that a few huge issues
// cannot take the cache's memory.
const maxCachedView = 64 << 10

// IssueViewCache holds rendered issue panels and summaries, keyed by site,
// issue and page, each valid only for the version of the issue's data
// (store.DataVersion) it was read at.
// Jira loads an issue's panel on every view of the issue, with a new token
// each time; the token is still verified on every request, and only what
// the store would have answered is reused. It is safe for concurrent use.
type IssueViewCache struct {
	entries *lru.Cache[issueViewKey, *issueViewEntry]
}

type issueViewKey struct {
	tenantID int64
	issueKey string
	page     string
}

type issueViewEntry struct {
	version store.DataVersion
	// siteURL is part of the page (links to the site); a reinstall may
	// change it without a data write.
	siteURL    string
	renderedAt time.Time
	html       []byte
	// emptyView is kept for an empty panel, whose admin variant is rendered
	// per viewer.
	emptyView *templates.IssuePanelView
}

// NewIssueViewCache returns a cache of at most size rendered pages (each at
// most 64 KB), or nil, which caches nothing, when size is zero.
func NewIssueViewCache(size int) (*IssueViewCache, error) {
	if size <= 0 {
		return nil, nil
	}
	c, err := lru.New[issueViewKey, *issueViewEntry](size)
	if err != nil {
		return nil, err
	}
	return &IssueViewCache{entries: c}, nil
}

// get returns the entry for k if it was rendered from version v of the site's
// data, for siteURL, less than IssueViewCacheTTL before now.
func (c *IssueViewCache) get(k issueViewKey, v store.DataVersion, siteURL string, now time.Time) (*issueViewEntry, bool) {
	if c == nil {
		return nil, false
	}
	e, ok := c.entries.Get(k)
	if !ok {
		return nil, false
	}
	if e.version != v || e.siteURL != siteURL || now.Sub(e.renderedAt) >= IssueViewCacheTTL || now.Before(e.renderedAt) {
		return nil, false
	}
	return e, true
}

func (c *IssueViewCache) put(k issueViewKey, e *issueViewEntry) {
	if c == nil || len(e.html) > maxCachedView {
		return
	}
	c.entries.Add(k, e)
}
