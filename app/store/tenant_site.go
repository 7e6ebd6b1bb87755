package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/keyline/keyline/app/tenant"
)

// TenantByBaseURL returns the installed tenant of appKey whose product base
// URL or display (custom domain) URL is siteURL, with its secret opened.
// Operators type the URL, so the comparison ignores the case of scheme and
// host, a trailing slash, and a missing "https://". No installed tenant gives
// an error wrapping tenant.ErrNotFound; two (which Atlassian should never
// produce) an error naming them, rather than a guess.
func (s *Store) TenantByBaseURL(ctx context.Context, appKey, siteURL string) (*tenant.Tenant, error) {
	want, host, err := normSiteURL(siteURL)
	if err != nil {
		return nil, fmt.Errorf("store: tenant by base url: %w", err)
	}
	// base_host narrows by host, display_url by the whole URL; the exact
	// comparison, which needs URL parsing, happens below.
	rows, err := s.db.WithContext(ctx).Raw(`SELECT `+tenantColumns+` FROM tenants
		WHERE app_key = ? AND installed
			AND (base_host = ? OR LOWER(display_url) IN (?, ?))
		ORDER BY id`,
		appKey, host, want, want+"/",
	).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: tenant by base url: %w", err)
	}
	defer rows.Close()
	var found []*tenant.Tenant
	for rows.Next() {
		t, err := s.scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("store: tenant by base url: %w", err)
		}
		for _, u := range []string{t.BaseURL, t.DisplayURL} {
			if got, _, err := normSiteURL(u); err == nil && got == want {
				found = append(found, t)
				break
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: tenant by base url: %w", err)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("store: tenant by base url: no installed %s at %s: %w", appKey, want, tenant.ErrNotFound)
	case 1:
		return found[0], nil
	}
	keys := make([]string, len(found))
	for i, t := range found {
		keys[i] = t.ClientKey
	}
	return nil, fmt.Errorf("store: tenant by base url: %d installed tenants at %s (client keys %s)",
		len(found), want, strings.Join(keys, ", "))
}

// normSiteURL returns scheme://host/path lower-cased (display URLs are
// matched with LOWER in SQL, and Atlassian paths are "" or "/wiki") without a
// trailing slash, and its host.
func normSiteURL(raw string) (norm, host string, err error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", "", errors.New("empty site URL")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("site URL: %w", err)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", "", fmt.Errorf("site URL %q: want a product base URL such as https://example.atlassian.net", raw)
	}
	host = strings.ToLower(u.Host)
	return strings.ToLower(u.Scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/")), host, nil
}
