package preview

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/descriptor"
)

// frameSpec is one iframe of the host page: a module of one of Keyline's
// descriptors and how the host fills its URL.
type frameSpec struct {
	ID      string // the host page's name for it: element id "frame-<ID>", ?frame=<ID>
	Product descriptor.Product
	Module  string // module key in the descriptor
	Kind    string // the descriptor's module type, shown on the host page
	Title   string
	URL     string // the module URL template, relative to the app's base URL
	// Height is the iframe's height until the page asks for another, as
	// the module's layout says or as the products default.
	Height string
	// AdminOnly frames are shown only to Jira administrators (the
	// configure page's user_is_admin condition).
	AdminOnly bool
	// Params are macro parameters, by identifier.
	Params map[string]string
}

// wanted lists the frames of the host page in page order, with the module
// each one takes from the descriptors.
var wanted = []struct {
	id, module, kind, title, height string
	product                         descriptor.Product
	params                          map[string]string
}{
	{"issue-panel", "devops-panel", "jiraIssueContents", "DevOps panel", "360px", descriptor.Jira, nil},
	{"issue-summary", "devops-summary", "webPanels", "DevOps summary", "", descriptor.Jira, nil},
	// The status view shows listed issues: the featured story, finished,
	// open, draft, rolled back and untouched ones.
	{"macro-status", "keyline-devops", "dynamicContentMacros", "Keyline DevOps macro: release readiness", "", descriptor.Confluence,
		map[string]string{"view": "status", "issues": "PAY-7,PAY-1,PAY-9,WEB-7,WEB-10,OPS-1,OPS-7,OPS-8"}},
	{"macro-deployments", "keyline-devops", "dynamicContentMacros", "Keyline DevOps macro: recent deployments", "", descriptor.Confluence, map[string]string{"view": "deployments"}},
	{"macro-metrics", "keyline-devops", "dynamicContentMacros", "Keyline DevOps macro: release metrics", "", descriptor.Confluence, map[string]string{"view": "metrics", "days": "120"}},
	{"macro-release-notes", "keyline-devops", "dynamicContentMacros", "Keyline DevOps macro: release notes", "", descriptor.Confluence, map[string]string{"view": "release-notes", "days": "30"}},
	{"project-page", "release-metrics", "jiraProjectPages", "Release metrics", "480px", descriptor.Jira, nil},
	{"jira-configure", "configure", "configurePage", "Configure Keyline for Jira", "560px", descriptor.Jira, nil},
	{"confluence-configure", "configure", "configurePage", "Configure Keyline for Confluence", "420px", descriptor.Confluence, nil},
}

// loadFrames reads the module URLs from Keyline's descriptors, so the
// preview frames exactly what an install would register.
func loadFrames(prefix string) ([]frameSpec, error) {
	r, err := descriptor.NewRenderer()
	if err != nil {
		return nil, fmt.Errorf("preview: %w", err)
	}
	modules := map[descriptor.Product]map[string]json.RawMessage{}
	for _, p := range descriptor.Products {
		// The base URL only fills the descriptor's absolute links, which the
		// preview does not use.
		b, err := r.Render(p, descriptor.Params{BaseURL: "https://preview.invalid", KeyPrefix: prefix})
		if err != nil {
			return nil, fmt.Errorf("preview: %w", err)
		}
		var d struct {
			Modules map[string]json.RawMessage `json:"modules"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("preview: read %s descriptor: %w", p, err)
		}
		modules[p] = d.Modules
	}
	var out []frameSpec
	for _, w := range wanted {
		m, err := findModule(modules[w.product][w.kind], w.module)
		if err != nil {
			return nil, fmt.Errorf("preview: %s descriptor, %s %q: %w", w.product, w.kind, w.module, err)
		}
		f := frameSpec{ID: w.id, Product: w.product, Module: w.module, Kind: w.kind, Title: w.title,
			URL: m.URL, Height: w.height, Params: w.params, AdminOnly: m.adminOnly()}
		if f.URL == "" {
			f.URL = m.Target.URL
		}
		if m.Layout.Height != "" {
			f.Height = m.Layout.Height
		}
		if m.Height != "" {
			f.Height = m.Height
		}
		if f.Height == "" {
			f.Height = "200px"
		}
		if !strings.HasPrefix(f.URL, "/") {
			return nil, fmt.Errorf("preview: %s module %q has no relative URL", w.product, w.module)
		}
		out = append(out, f)
	}
	return out, nil
}

// module is the part of a descriptor module the host reads.
type module struct {
	Key    string `json:"key"`
	URL    string `json:"url"`
	Height string `json:"height"`
	Target struct {
		URL string `json:"url"`
	} `json:"target"`
	Layout struct {
		Height string `json:"height"`
	} `json:"layout"`
	Conditions []struct {
		Condition string `json:"condition"`
	} `json:"conditions"`
}

func (m module) adminOnly() bool {
	for _, c := range m.Conditions {
		if c.Condition == "user_is_admin" {
			return true
		}
	}
	return false
}

// findModule finds module key in raw, a module list or a single module
// (configurePage is an object, the others are arrays).
func findModule(raw json.RawMessage, key string) (module, error) {
	if len(raw) == 0 {
		return module{}, errors.New("no such module type")
	}
	var list []module
	if err := json.Unmarshal(raw, &list); err != nil {
		var one module
		if err := json.Unmarshal(raw, &one); err != nil {
			return module{}, fmt.Errorf("read module: %w", err)
		}
		list = []module{one}
	}
	for _, m := range list {
		if m.Key == key {
			return m, nil
		}
	}
	return module{}, errors.New("not found")
}

// variable is a context variable in a module URL: {issue.key}, {macro.id},
// or a macro parameter such as {projects}; the legacy ${issue.key} form too.
var variable = regexp.MustCompile(`\$?\{([A-Za-z0-9_.-]+)\}`)

// fill substitutes the context variables of a module URL as the products do:
// each value URL-encoded, unknown variables empty.
func fill(tmpl string, vars map[string]string) string {
	return variable.ReplaceAllStringFunc(tmpl, func(m string) string {
		return queryEscape(vars[variable.FindStringSubmatch(m)[1]])
	})
}

// queryEscape encodes a query value with %20 for a space, never '+', so the
// canonical query string cannot depend on how a reader decodes '+'.
func queryEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// frameURL is the src of one iframe: the app's base URL on Keyline, the
// filled module URL, the standard parameters a product appends (spec §6) and
// a product token whose qsh binds all of them.
func (h *Host) frameURL(f frameSpec, vars map[string]string, hostOrigin, keylineOrigin, accountID string) (string, error) {
	app := h.apps[f.Product]
	filled := fill(f.URL, vars)
	path, query, _ := strings.Cut(filled, "?")
	std := []string{
		"xdm_e=" + queryEscape(hostOrigin),
		"xdm_c=" + queryEscape("channel-"+app.key+"__"+f.Module),
		"cp=" + queryEscape(app.cp),
		"xdm_deprecated_addon_key_do_not_use=" + queryEscape(app.key),
		"lic=none",
		"cv=1001.0.0-SNAPSHOT",
	}
	if query != "" {
		query += "&"
	}
	query += strings.Join(std, "&")
	full := app.basePath + path
	qsh, err := connect.QSH(http.MethodGet, full, query, app.basePath)
	if err != nil {
		return "", fmt.Errorf("preview: qsh of %s: %w", f.ID, err)
	}
	tok, err := h.sign(app, qsh, accountID)
	if err != nil {
		return "", err
	}
	return keylineOrigin + full + "?" + query + "&jwt=" + tok, nil
}

// sign issues a product token for app's tenant, as Jira or Confluence
// would: HS256 with the shared secret, iss = the site's client key, sub = the
// user, and qsh either a computed hash or connect.ContextQSH.
func (h *Host) sign(app appInfo, qsh, accountID string) (string, error) {
	now := h.opts.Now()
	ctxClaim := json.RawMessage(`{}`)
	if qsh == connect.ContextQSH {
		b, err := json.Marshal(map[string]any{"user": map[string]string{"accountId": accountID}})
		if err != nil {
			return "", fmt.Errorf("preview: context claim: %w", err)
		}
		ctxClaim = b
	}
	claims := connect.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    app.tenant.ClientKey,
			Subject:   accountID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(h.opts.TokenLifetime)),
		},
		QSH:     qsh,
		Context: ctxClaim,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(app.tenant.SharedSecret)
	if err != nil {
		return "", fmt.Errorf("preview: sign %s token: %w", app.key, err)
	}
	return tok, nil
}
