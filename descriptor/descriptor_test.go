package descriptor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

var params = Params{BaseURL: "https://keyline.example.com", KeyPrefix: "com.example.keyline"}

func render(t *testing.T, p Product) []byte {
	t.Helper()
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Render(p, params)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	for _, p := range Products {
		t.Run(string(p), func(t *testing.T) {
			got := render(t, p)
			golden := filepath.Join("testdata", string(p)+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("descriptor differs from %s; run go test ./descriptor -update and review the diff", golden)
			}
		})
	}
}

// moduleKey is Connect's rule for module keys (spec §1.3).
var moduleKey = regexp.MustCompile(`^[a-zA-Z0-9-]+$`)

// singleModules are module types Connect takes as one object, not an array (spec §1.3).
var singleModules = map[string]bool{
	"configurePage": true, "postInstallPage": true,
	"jiraDevelopmentTool": true, "jiraBuildInfoProvider": true, "jiraDeploymentInfoProvider": true,
}

// productModules says which module types belong to which product; a module of
// the other product fails the install (spec §1.5).
var productModules = map[Product]map[string]bool{
	Jira:       {"jiraIssueContents": true, "webPanels": true, "jiraProjectPages": true, "configurePage": true, "webhooks": true},
	Confluence: {"dynamicContentMacros": true, "configurePage": true},
}

func TestDescriptorRules(t *testing.T) {
	baseURLs := map[string]Product{}
	for _, p := range Products {
		t.Run(string(p), func(t *testing.T) {
			var d map[string]any
			if err := json.Unmarshal(render(t, p), &d); err != nil {
				t.Fatal(err)
			}
			key, _ := d["key"].(string)
			if key == "" || len(key) > 64 {
				t.Errorf("key %q must be 1–64 characters", key)
			}
			base, _ := d["baseUrl"].(string)
			if !strings.HasPrefix(base, "https://") || strings.HasSuffix(base, "/") {
				t.Errorf("baseUrl %q must be https without a trailing slash", base)
			}
			if other, dup := baseURLs[base]; dup {
				t.Errorf("baseUrl %q is shared with %s", base, other)
			}
			baseURLs[base] = p
			if auth, _ := d["authentication"].(map[string]any); auth["type"] != "jwt" {
				t.Errorf("authentication = %v, want jwt", d["authentication"])
			}
			mig, _ := d["apiMigrations"].(map[string]any)
			for _, flag := range []string{"signed-install", "context-qsh", "gdpr"} {
				if mig[flag] != true {
					t.Errorf("apiMigrations[%s] = %v, want true", flag, mig[flag])
				}
			}
			lc, _ := d["lifecycle"].(map[string]any)
			for _, ev := range []string{"installed", "uninstalled", "enabled", "disabled"} {
				if lc[ev] != "/"+ev {
					t.Errorf("lifecycle[%s] = %v", ev, lc[ev])
				}
			}
			for _, s := range d["scopes"].([]any) {
				switch s {
				case "READ":
				default:
					t.Errorf("scope %v is more than the app needs", s)
				}
			}
			modules, _ := d["modules"].(map[string]any)
			seen := map[string]bool{}
			for typ, v := range modules {
				if !productModules[p][typ] {
					t.Errorf("module type %s does not belong in the %s app", typ, p)
				}
				var list []any
				if singleModules[typ] {
					m, ok := v.(map[string]any)
					if !ok {
						t.Errorf("%s must be an object", typ)
						continue
					}
					list = []any{m}
				} else {
					var ok bool
					if list, ok = v.([]any); !ok {
						t.Errorf("%s must be an array", typ)
						continue
					}
				}
				if typ == "webhooks" {
					continue
				}
				for _, m := range list {
					k, _ := m.(map[string]any)["key"].(string)
					if !moduleKey.MatchString(k) || len(k) > 100 {
						t.Errorf("%s module key %q breaks ^[a-zA-Z0-9-]+$ or 100 characters", typ, k)
					}
					if seen[k] {
						t.Errorf("module key %q used twice", k)
					}
					seen[k] = true
				}
			}
		})
	}
}

func TestRenderEscapesParams(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Render(Jira, Params{BaseURL: `https://x.example/"}`, KeyPrefix: "k"})
	if err != nil {
		t.Fatalf("a quote in the base URL broke the JSON: %v", err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d["baseUrl"] != `https://x.example/"}/jira` {
		t.Errorf("baseUrl = %v", d["baseUrl"])
	}
}
