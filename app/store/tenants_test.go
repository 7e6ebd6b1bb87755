package store_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// oddTime has nanoseconds and a non-UTC zone, to prove the store normalises
// both the same way on both engines.
var oddTime = time.Date(2025, 3, 9, 14, 15, 16, 123456789, time.FixedZone("UTC+5:30", 5*3600+1800))

func install(clientKey string, mods ...func(*tenant.Install)) tenant.Install {
	in := tenant.Install{
		AppKey:         "dev.keyline.jira",
		ClientKey:      clientKey,
		BaseURL:        "https://" + clientKey + ".atlassian.net",
		DisplayURL:     "https://jira." + clientKey + ".example.com",
		ProductType:    "jira",
		Description:    "Atlassian JIRA at https://" + clientKey + ".atlassian.net",
		SharedSecret:   []byte("secret-of-" + clientKey),
		OAuthClientID:  "oauth-" + clientKey,
		InstallationID: "ari:cloud:ecosystem::installation/" + clientKey,
		CloudID:        "cloud-" + clientKey,
		At:             oddTime,
	}
	for _, m := range mods {
		m(&in)
	}
	return in
}

func mustUpsert(t *testing.T, s *store.Store, in tenant.Install) *tenant.Tenant {
	t.Helper()
	got, err := s.UpsertTenant(context.Background(), in)
	if err != nil {
		t.Fatalf("UpsertTenant(%s): %v", in.ClientKey, err)
	}
	return got
}

func wantTenant(in tenant.Install, id int64) tenant.Tenant {
	at := in.At.UTC().Truncate(time.Microsecond)
	return tenant.Tenant{
		ID: id, AppKey: in.AppKey, ClientKey: in.ClientKey, BaseURL: in.BaseURL,
		DisplayURL: in.DisplayURL, ProductType: in.ProductType, Description: in.Description,
		SharedSecret: in.SharedSecret, OAuthClientID: in.OAuthClientID,
		InstallationID: in.InstallationID, CloudID: in.CloudID,
		Installed: true, Enabled: true, InstalledAt: at, UpdatedAt: at,
	}
}

// diffTenant compares field by field; times must be equal instants and UTC.
func diffTenant(t *testing.T, got *tenant.Tenant, want tenant.Tenant) {
	t.Helper()
	if got == nil {
		t.Fatal("got nil tenant")
	}
	checkTime := func(name string, g, w time.Time) {
		t.Helper()
		if !g.Equal(w) {
			t.Errorf("%s = %v, want %v", name, g, w)
		}
		if g.Location() != time.UTC {
			t.Errorf("%s location = %v, want UTC", name, g.Location())
		}
	}
	checkTime("InstalledAt", got.InstalledAt, want.InstalledAt)
	checkTime("UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	switch {
	case got.UninstalledAt == nil && want.UninstalledAt != nil,
		got.UninstalledAt != nil && want.UninstalledAt == nil:
		t.Errorf("UninstalledAt = %v, want %v", got.UninstalledAt, want.UninstalledAt)
	case got.UninstalledAt != nil:
		checkTime("UninstalledAt", *got.UninstalledAt, *want.UninstalledAt)
	}
	if !bytes.Equal(got.SharedSecret, want.SharedSecret) {
		t.Errorf("SharedSecret = %q, want %q", got.SharedSecret, want.SharedSecret)
	}
	g, w := *got, want
	g.InstalledAt, g.UpdatedAt, g.UninstalledAt, g.SharedSecret = time.Time{}, time.Time{}, nil, nil
	w.InstalledAt, w.UpdatedAt, w.UninstalledAt, w.SharedSecret = time.Time{}, time.Time{}, nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("tenant =\n%+v\nwant\n%+v", g, w)
	}
}

func TestUpsertTenantRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := install("acme")
		got := mustUpsert(t, s, in)
		if got.ID <= 0 {
			t.Fatalf("ID = %d", got.ID)
		}
		diffTenant(t, got, wantTenant(in, got.ID))

		read, err := s.TenantByClientKey(ctx, in.AppKey, in.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		diffTenant(t, read, wantTenant(in, got.ID))

		// The database holds only sealed bytes.
		raw, err := s.RawSharedSecret(ctx, in.AppKey, in.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) == 0 || bytes.Contains(raw, in.SharedSecret) {
			t.Errorf("stored secret %q is empty or contains the plaintext", raw)
		}
	})
}

func TestUpsertTenantReinstallReplaces(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		first := mustUpsert(t, s, install("acme"))
		if _, err := s.MarkUninstalled(ctx, "dev.keyline.jira", "acme", oddTime.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		re := install("acme", func(in *tenant.Install) {
			in.SharedSecret = []byte("a brand new secret")
			in.BaseURL = "https://acme-renamed.atlassian.net"
			in.DisplayURL = ""
			in.Description = "renamed"
			in.OAuthClientID = "oauth-2"
			in.InstallationID = "inst-2"
			in.CloudID = "cloud-2"
			in.At = oddTime.Add(2 * time.Hour)
		})
		second := mustUpsert(t, s, re)
		if second.ID != first.ID {
			t.Fatalf("reinstall changed id %d -> %d; site data would be orphaned", first.ID, second.ID)
		}
		read, err := s.TenantByClientKey(ctx, re.AppKey, re.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		diffTenant(t, read, wantTenant(re, first.ID))
	})
}

func TestUpsertTenantRejects(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*tenant.Install)
	}{
		{"no app key", func(in *tenant.Install) { in.AppKey = "" }},
		{"no client key", func(in *tenant.Install) { in.ClientKey = "" }},
		{"no secret", func(in *tenant.Install) { in.SharedSecret = nil }},
		{"no base url", func(in *tenant.Install) { in.BaseURL = "" }},
		{"base url without host", func(in *tenant.Install) { in.BaseURL = "/just/a/path" }},
	}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := s.UpsertTenant(context.Background(), install("acme", tt.mod)); err == nil {
					t.Fatal("UpsertTenant accepted an invalid install")
				}
			})
		}
	})
}

func TestUpsertTenantZeroTimeUsesClock(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		s.SetClock(func() time.Time { return oddTime })
		got := mustUpsert(t, s, install("acme", func(in *tenant.Install) { in.At = time.Time{} }))
		if want := oddTime.UTC().Truncate(time.Microsecond); !got.InstalledAt.Equal(want) {
			t.Fatalf("InstalledAt = %v, want %v", got.InstalledAt, want)
		}
	})
}

func TestTenantByClientKeyNotFound(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		mustUpsert(t, s, install("acme"))
		for _, k := range [][2]string{
			{"dev.keyline.jira", "nope"},
			{"dev.keyline.confluence", "acme"}, // same site, other app
			{"", ""},
		} {
			_, err := s.TenantByClientKey(context.Background(), k[0], k[1])
			if !errors.Is(err, tenant.ErrNotFound) {
				t.Errorf("TenantByClientKey(%q, %q) = %v, want tenant.ErrNotFound", k[0], k[1], err)
			}
		}
	})
}

func TestTenantByClientKeyWrongSealingKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mustUpsert(t, s, install("acme"))
		if err := s.Exec(ctx, `UPDATE tenants SET shared_secret_enc = ?`, []byte("\x01not sealed by us, long enough to parse")); err != nil {
			t.Fatal(err)
		}
		_, err := s.TenantByClientKey(ctx, "dev.keyline.jira", "acme")
		if err == nil || errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("TenantByClientKey with undecryptable secret = %v, want a decryption error", err)
		}
	})
}

func TestMarkUninstalled(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		in := install("acme")
		created := mustUpsert(t, s, in)
		first := oddTime.Add(time.Hour)
		for i, at := range []time.Time{first, first.Add(time.Hour)} { // second call: idempotent
			found, err := s.MarkUninstalled(ctx, in.AppKey, in.ClientKey, at)
			if err != nil || !found {
				t.Fatalf("call %d: MarkUninstalled = %v, %v; want true, nil", i, found, err)
			}
			got, err := s.TenantByClientKey(ctx, in.AppKey, in.ClientKey)
			if err != nil {
				t.Fatal(err)
			}
			want := wantTenant(in, created.ID)
			want.Installed, want.Enabled = false, false
			u := first.UTC().Truncate(time.Microsecond)
			want.UninstalledAt, want.UpdatedAt = &u, u
			diffTenant(t, got, want)
		}
		found, err := s.MarkUninstalled(ctx, in.AppKey, "unknown", first)
		if err != nil || found {
			t.Fatalf("MarkUninstalled(unknown) = %v, %v; want false, nil", found, err)
		}
	})
}

func TestSetEnabled(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acme := mustUpsert(t, s, install("acme"))
		other := mustUpsert(t, s, install("other"))
		later := oddTime.Add(time.Minute)
		s.SetClock(func() time.Time { return later })
		for _, enabled := range []bool{false, false, true} {
			if err := s.SetEnabled(ctx, acme, enabled); err != nil {
				t.Fatal(err)
			}
			got, _ := s.TenantByClientKey(ctx, acme.AppKey, acme.ClientKey)
			if got.Enabled != enabled || !got.UpdatedAt.Equal(later.UTC().Truncate(time.Microsecond)) {
				t.Errorf("after SetEnabled(%v): enabled=%v updated=%v", enabled, got.Enabled, got.UpdatedAt)
			}
		}
		if !acme.Enabled {
			t.Error("SetEnabled modified its argument")
		}
		if got, _ := s.TenantByClientKey(ctx, other.AppKey, other.ClientKey); !got.Enabled {
			t.Error("SetEnabled changed another tenant")
		}
		tests := []struct {
			name string
			t    *tenant.Tenant
		}{
			{"nil", nil},
			{"zero id", &tenant.Tenant{AppKey: acme.AppKey, ClientKey: acme.ClientKey}},
			{"unknown id", &tenant.Tenant{ID: 9999, AppKey: acme.AppKey, ClientKey: acme.ClientKey}},
			{"id of other keys", &tenant.Tenant{ID: other.ID, AppKey: acme.AppKey, ClientKey: acme.ClientKey}},
		}
		for _, tt := range tests {
			if err := s.SetEnabled(ctx, tt.t, false); err == nil {
				t.Errorf("%s: SetEnabled succeeded", tt.name)
			}
		}
		if got, _ := s.TenantByClientKey(ctx, other.AppKey, other.ClientKey); !got.Enabled {
			t.Error("SetEnabled with a mismatched tenant changed another row")
		}

		// Uninstall wins over a late "enabled"; a late "disabled" is harmless.
		if _, err := s.MarkUninstalled(ctx, acme.AppKey, acme.ClientKey, later); err != nil {
			t.Fatal(err)
		}
		if err := s.SetEnabled(ctx, acme, true); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("enabling an uninstalled tenant = %v, want tenant.ErrNotFound", err)
		}
		if err := s.SetEnabled(ctx, acme, false); err != nil {
			t.Errorf("disabling an uninstalled tenant = %v", err)
		}
		if got, _ := s.TenantByClientKey(ctx, acme.AppKey, acme.ClientKey); got.Enabled || got.Installed {
			t.Errorf("after uninstall + late enable: installed=%v enabled=%v", got.Installed, got.Enabled)
		}
	})
}

func TestTenantsOnHost(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		conf := mustUpsert(t, s, install("acme-c", func(in *tenant.Install) {
			in.AppKey, in.ProductType, in.BaseURL = "dev.keyline.confluence", "confluence", "https://ACME.atlassian.net/wiki"
		}))
		jira := mustUpsert(t, s, install("acme-j", func(in *tenant.Install) {
			in.BaseURL = "https://acme.atlassian.net"
		}))
		mustUpsert(t, s, install("other-j", func(in *tenant.Install) { in.BaseURL = "https://other.atlassian.net" }))
		mustUpsert(t, s, install("evil-j", func(in *tenant.Install) { in.BaseURL = "https://acme.atlassian.net.evil.com" }))
		gone := mustUpsert(t, s, install("acme-j2", func(in *tenant.Install) {
			in.AppKey, in.BaseURL = "dev.keyline.jira.old", "https://acme.atlassian.net"
		}))
		if _, err := s.MarkUninstalled(ctx, gone.AppKey, gone.ClientKey, oddTime); err != nil {
			t.Fatal(err)
		}

		got, err := s.TenantsOnHost(ctx, conf, "jira")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != jira.ID || !bytes.Equal(got[0].SharedSecret, jira.SharedSecret) {
			t.Fatalf("TenantsOnHost(confluence, jira) = %+v, want only tenant %d with its secret", got, jira.ID)
		}
		back, err := s.TenantsOnHost(ctx, jira, "confluence")
		if err != nil || len(back) != 1 || back[0].ID != conf.ID {
			t.Fatalf("TenantsOnHost(jira, confluence) = %+v, %v", back, err)
		}
		self, err := s.TenantsOnHost(ctx, jira, "jira")
		if err != nil || len(self) != 0 {
			t.Fatalf("TenantsOnHost(jira, jira) = %+v, %v; want none (self and uninstalled excluded)", self, err)
		}
		if _, err := s.TenantsOnHost(ctx, nil, "jira"); err == nil {
			t.Fatal("TenantsOnHost(nil) succeeded")
		}
	})
}
