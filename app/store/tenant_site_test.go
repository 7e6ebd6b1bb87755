package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

func TestTenantByBaseURL(t *testing.T) {
	const jira, conf = "dev.keyline.jira", "dev.keyline.confluence"
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acme := mustUpsert(t, s, install("acme", func(in *tenant.Install) {
			in.BaseURL, in.DisplayURL = "https://acme.atlassian.net", "https://Jira.Acme.example.com/"
		}))
		wiki := mustUpsert(t, s, install("acme-wiki", func(in *tenant.Install) {
			in.AppKey, in.ProductType = conf, "confluence"
			in.BaseURL, in.DisplayURL = "https://acme.atlassian.net/wiki", ""
		}))
		mustUpsert(t, s, install("evil", func(in *tenant.Install) {
			in.BaseURL, in.DisplayURL = "https://acme.atlassian.net.evil.com", ""
		}))
		gone := mustUpsert(t, s, install("gone", func(in *tenant.Install) {
			in.BaseURL, in.DisplayURL = "https://gone.atlassian.net", ""
		}))
		if _, err := s.MarkUninstalled(ctx, gone.AppKey, gone.ClientKey, oddTime); err != nil {
			t.Fatal(err)
		}

		tests := []struct {
			appKey, url string
			want        int64 // 0: tenant.ErrNotFound; -1: another error
		}{
			{jira, "https://acme.atlassian.net", acme.ID},
			{jira, "https://acme.atlassian.net/", acme.ID},
			{jira, "  HTTPS://ACME.Atlassian.NET  ", acme.ID},
			{jira, "acme.atlassian.net", acme.ID},
			{jira, "https://jira.acme.example.com", acme.ID},
			{jira, "jira.acme.example.com/", acme.ID},
			{jira, "http://acme.atlassian.net", 0},
			{jira, "https://acme.atlassian.net/wiki", 0},
			{jira, "https://acme.atlassian.net:8443", 0},
			{jira, "https://atlassian.net", 0},
			{jira, "https://gone.atlassian.net", 0},
			{conf, "https://acme.atlassian.net/wiki/", wiki.ID},
			{conf, "https://acme.atlassian.net", 0},
			{"dev.keyline.other", "https://acme.atlassian.net", 0},
			{jira, "", -1},
			{jira, "https://acme.atlassian.net/?x=1", -1},
			{jira, "https://user@acme.atlassian.net", -1},
			{jira, "ftp://acme.atlassian.net", -1},
			{jira, "https://acme.atlassian.net/%zz", -1},
		}
		for _, tt := range tests {
			got, err := s.TenantByBaseURL(ctx, tt.appKey, tt.url)
			switch {
			case tt.want > 0 && (err != nil || got.ID != tt.want || len(got.SharedSecret) == 0):
				t.Errorf("TenantByBaseURL(%s, %q) = %+v, %v; want tenant %d", tt.appKey, tt.url, got, err, tt.want)
			case tt.want == 0 && !errors.Is(err, tenant.ErrNotFound):
				t.Errorf("TenantByBaseURL(%s, %q) = %+v, %v; want tenant.ErrNotFound", tt.appKey, tt.url, got, err)
			case tt.want < 0 && (err == nil || errors.Is(err, tenant.ErrNotFound)):
				t.Errorf("TenantByBaseURL(%s, %q) = %+v, %v; want an invalid URL error", tt.appKey, tt.url, got, err)
			}
		}
		// A look-alike host is another site, found only by its own URL (and
		// acme.atlassian.net above found acme alone, not it too).
		if got, err := s.TenantByBaseURL(ctx, jira, "acme.atlassian.net.evil.com"); err != nil || got.ClientKey != "evil" {
			t.Errorf("evil tenant by its own URL = %+v, %v", got, err)
		}

		// Two installed tenants at one URL: refuse to guess.
		mustUpsert(t, s, install("acme-2", func(in *tenant.Install) {
			in.BaseURL, in.DisplayURL = "https://acme.atlassian.net", ""
		}))
		if got, err := s.TenantByBaseURL(ctx, jira, "https://acme.atlassian.net"); err == nil || errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("ambiguous site = %+v, %v; want an error naming both", got, err)
		}
	})
}
