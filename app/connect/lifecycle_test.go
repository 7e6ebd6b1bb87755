package connect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestParseLifecyclePayload(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    LifecyclePayload
		wantErr bool
	}{
		{name: "full jira payload", body: `{"key":"com.keyline.jira","clientKey":"ck","sharedSecret":"s",
			"serverVersion":"100104","pluginsVersion":"1.415.0","baseUrl":"https://acme.atlassian.net",
			"displayUrl":"https://jira.acme.com","productType":"jira","description":"Atlassian JIRA at https://acme.atlassian.net ",
			"eventType":"installed","oauthClientId":"oc","installationId":"ari:cloud:ecosystem::installation/x",
			"cloudId":"cid","entitlementId":"eid","entitlementNumber":"E-1","publicKey":"ignored","unknown":{"a":1}}`,
			want: LifecyclePayload{Key: "com.keyline.jira", ClientKey: "ck", SharedSecret: "s", ServerVersion: "100104",
				PluginsVersion: "1.415.0", BaseURL: "https://acme.atlassian.net", DisplayURL: "https://jira.acme.com",
				ProductType: "jira", Description: "Atlassian JIRA at https://acme.atlassian.net ", EventType: "installed",
				OAuthClientID: "oc", InstallationID: "ari:cloud:ecosystem::installation/x", CloudID: "cid",
				EntitlementID: "eid", EntitlementNumber: "E-1"}},
		{name: "numbers and nulls in informational fields", body: `{"eventType":"enabled","serverVersion":100104,
			"entitlementNumber":42,"description":null,"pluginsVersion":true}`,
			want: LifecyclePayload{EventType: "enabled", ServerVersion: "100104", EntitlementNumber: "42", PluginsVersion: "true"}},
		{name: "object in informational field", body: `{"serverVersion":{"a":1}}`, wantErr: true},
		{name: "number as clientKey", body: `{"clientKey":1}`, wantErr: true},
		{name: "not JSON", body: `eventType=installed`, wantErr: true},
		{name: "truncated", body: `{"eventType":"installed"`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLifecyclePayload([]byte(tt.body))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.want {
				t.Fatalf("got  %#v\nwant %#v", *got, tt.want)
			}
		})
	}
}

func TestLifecyclePayloadCheck(t *testing.T) {
	base := LifecyclePayload{EventType: EventEnabled, Key: "app", ClientKey: "ck"}
	tests := []struct {
		name    string
		edit    func(p *LifecyclePayload)
		event   string
		issuer  string
		wantErr bool
	}{
		{name: "matches", event: EventEnabled, issuer: "ck"},
		{name: "other app", edit: func(p *LifecyclePayload) { p.Key = "other" }, event: EventEnabled, issuer: "ck", wantErr: true},
		{name: "other event", event: EventDisabled, issuer: "ck", wantErr: true},
		{name: "other issuer", event: EventEnabled, issuer: "ck2", wantErr: true},
		{name: "empty clientKey and issuer", edit: func(p *LifecyclePayload) { p.ClientKey = "" }, event: EventEnabled, wantErr: true},
		{name: "installed needs secret", edit: func(p *LifecyclePayload) { p.EventType = EventInstalled }, event: EventInstalled,
			issuer: "ck", wantErr: true},
		{name: "installed with secret", edit: func(p *LifecyclePayload) { p.EventType = EventInstalled; p.SharedSecret = "s" },
			event: EventInstalled, issuer: "ck"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			if tt.edit != nil {
				tt.edit(&p)
			}
			if err := p.Check("app", tt.event, tt.issuer); (err != nil) != tt.wantErr {
				t.Fatalf("Check = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestLifecyclePayloadInstall(t *testing.T) {
	p := LifecyclePayload{Key: "app", ClientKey: "ck", SharedSecret: "s", BaseURL: "https://a.atlassian.net", CloudID: "c"}
	in := p.Install(fixedClock())
	if in.DisplayURL != p.BaseURL || string(in.SharedSecret) != "s" || in.AppKey != "app" || !in.At.Equal(fixedClock()) {
		t.Fatalf("Install = %+v", in)
	}
	p.DisplayURL = "https://jira.acme.com"
	if got := p.Install(fixedClock()).DisplayURL; got != p.DisplayURL {
		t.Fatalf("DisplayURL = %q", got)
	}
}

func TestLifecyclePayloadDoesNotLeakSecret(t *testing.T) {
	p := &LifecyclePayload{EventType: "installed", Key: "app", ClientKey: "ck", SharedSecret: "TOP-SECRET"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("install", "payload", p)
	outputs := []string{buf.String(), fmt.Sprint(p), fmt.Sprintf("%v %+v %s", *p, p, p)}
	for _, out := range outputs {
		if strings.Contains(out, "TOP-SECRET") {
			t.Fatalf("secret leaked: %s", out)
		}
	}
	var logged map[string]any
	if err := json.Unmarshal(buf.Bytes(), &logged); err != nil || logged["payload"] == nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
}
