package preview

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/descriptor"
)

var (
	//go:embed assets/all.js
	apStub []byte
	//go:embed assets/host.js
	hostJS []byte
	//go:embed assets/host.css
	hostCSS []byte
	//go:embed assets/host.html
	hostHTML string
)

var hostPage = template.Must(template.New("host").Parse(hostHTML))

// The demo Confluence page the macro sits on.
const (
	confluenceSpaceKey = "ENG"
	confluenceSpaceID  = "65537"
	confluencePageID   = "98305"
	confluenceMacroID  = "4f0c5d9e-1b2a-4c3d-9e8f-7a6b5c4d3e2f"
)

// pageData fills assets/host.html.
type pageData struct {
	SiteHost      string
	KeylineOrigin string
	FrameSrc      string // the host page's CSP frame-src
	Issues        []pickerIssue
	AsViewer      bool
	Issue         *shownIssue
	UnknownIssue  string
	Projects      []Project
	Frames        map[string]frameView
}

type pickerIssue struct {
	Issue
	Selected bool
}

type shownIssue struct {
	Key, ID, Summary, Status, StatusCategory, ProjectKey, ProjectName string
}

// frameView is one iframe as the template writes it.
type frameView struct {
	ID, Title, Kind, Module, AppKey, Name string
	Src                                   string
	Height                                string
	Context                               string // JSON for AP.context.getContext
	Hidden                                string // why the product would not show it
}

// showHostPage renders the host page: the selected issue (?issue=KEY) as the
// Jira issue view shows it, a Confluence page with the macro, the project
// page and both configure pages, each iframe with a freshly signed URL.
// ?as=viewer acts as a user who is not a Jira administrator.
func (h *Host) showHostPage(w http.ResponseWriter, r *http.Request) {
	hostOrigin := originOf(r)
	keylineOrigin := hostOrigin
	frameSrc := "'self'"
	if h.keyline != nil {
		keylineOrigin = h.keyline.String()
		frameSrc = keylineOrigin
	}
	account := AdminAccountID
	asViewer := r.URL.Query().Get("as") == "viewer"
	if asViewer {
		account = ViewerAccountID
	}
	d := pageData{
		SiteHost:      hostOf(h.opts.Jira.DisplayURL),
		KeylineOrigin: keylineOrigin,
		FrameSrc:      frameSrc,
		AsViewer:      asViewer,
		Projects:      h.opts.Projects,
		Frames:        map[string]frameView{},
	}
	key := strings.ToUpper(strings.TrimSpace(r.URL.Query().Get("issue")))
	if key == "" && len(h.opts.Issues) > 0 {
		key = h.opts.Issues[0].Key
	}
	if key != "" {
		is, err := h.lookupIssue(r, key)
		switch {
		case err == nil:
			d.Issue = is
		case errors.Is(err, store.ErrNotFound):
			d.UnknownIssue = key
		default:
			h.log.Error("preview: look up issue", slog.String("issue", key), slog.String("error", err.Error()))
			http.Error(w, "could not read the issue from Keyline's store", http.StatusInternalServerError)
			return
		}
	}
	for _, is := range h.opts.Issues {
		d.Issues = append(d.Issues, pickerIssue{Issue: is, Selected: d.Issue != nil && is.Key == d.Issue.Key})
	}
	for _, f := range h.frames {
		vars, ctxJSON := h.frameVars(f, d.Issue)
		v := frameView{ID: f.ID, Title: f.Title, Kind: f.Kind, Module: f.Module, Height: f.Height,
			AppKey: h.apps[f.Product].key, Name: h.apps[f.Product].key + "__" + f.Module + "__" + f.ID, Context: ctxJSON}
		switch {
		case f.Product == descriptor.Jira && f.Kind != "configurePage" && f.Kind != "jiraProjectPages" && d.Issue == nil:
			v.Hidden = "Choose an issue of the demo site to see this panel."
		case f.AdminOnly && asViewer:
			v.Hidden = "Jira shows the configure page to site administrators only."
		default:
			src, err := h.frameURL(f, vars, hostOrigin, keylineOrigin, account)
			if err != nil {
				h.log.Error("preview: frame URL", slog.String("frame", f.ID), slog.String("error", err.Error()))
				http.Error(w, "could not sign the iframe URLs", http.StatusInternalServerError)
				return
			}
			v.Src = src
		}
		d.Frames[f.ID] = v
	}
	var buf bytes.Buffer
	if err := hostPage.Execute(&buf, d); err != nil {
		h.log.Error("preview: render host page", slog.String("error", err.Error()))
		http.Error(w, "could not render the host page", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	// The page holds signed iframe URLs: never cache it.
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; frame-src "+frameSrc+"; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
	w.Write(buf.Bytes())
}

// lookupIssue asks Keyline's store what Jira's webhooks said about key; the
// picker's own entry fills in when the store has no summary.
func (h *Host) lookupIssue(r *http.Request, key string) (*shownIssue, error) {
	if !devops.ValidIssueKey(key) {
		return nil, store.ErrNotFound
	}
	ji, err := h.opts.Store.JiraIssueByKey(r.Context(), h.opts.Jira, key)
	if err != nil {
		return nil, err
	}
	is := &shownIssue{Key: ji.IssueKey, ID: ji.IssueID, Summary: ji.Summary, Status: ji.StatusName,
		StatusCategory: ji.StatusCategory, ProjectKey: ji.ProjectKey}
	if is.ProjectKey == "" {
		is.ProjectKey = devops.ProjectOf(key)
	}
	for _, p := range h.opts.Projects {
		if p.Key == is.ProjectKey {
			is.ProjectName = p.Name
		}
	}
	h.rememberIssue(Issue{Key: is.Key, ID: is.ID, Summary: is.Summary})
	return is, nil
}

// frameVars are the context variables of one frame (spec §1.3, §6) and the
// context AP.context.getContext() answers in it.
func (h *Host) frameVars(f frameSpec, is *shownIssue) (map[string]string, string) {
	vars := map[string]string{}
	var ctx any
	switch f.Product {
	case descriptor.Jira:
		jiraCtx := map[string]any{}
		projectKey := ""
		if is != nil {
			vars["issue.key"], vars["issue.id"] = is.Key, is.ID
			jiraCtx["issue"] = map[string]string{"key": is.Key, "id": is.ID}
			projectKey = is.ProjectKey
		} else if len(h.opts.Projects) > 0 {
			projectKey = h.opts.Projects[0].Key
		}
		if projectKey != "" {
			vars["project.key"] = projectKey
			vars["project.id"] = h.projectID(projectKey)
			jiraCtx["project"] = map[string]string{"key": projectKey, "id": vars["project.id"]}
		}
		ctx = map[string]any{"jira": jiraCtx}
	case descriptor.Confluence:
		var keys []string
		for _, p := range h.opts.Projects {
			keys = append(keys, p.Key)
		}
		vars["macro.id"] = confluenceMacroID
		vars["page.id"] = confluencePageID
		vars["space.key"] = confluenceSpaceKey
		vars["output.type"] = "display"
		vars["projects"] = strings.Join(keys, ",")
		for k, v := range f.Params {
			vars[k] = v
		}
		ctx = map[string]any{"confluence": map[string]any{
			"content": map[string]string{"id": confluencePageID, "type": "page", "version": "7"},
			"space":   map[string]string{"key": confluenceSpaceKey, "id": confluenceSpaceID},
			"macro":   map[string]string{"id": confluenceMacroID, "outputType": "display"},
		}}
	}
	b, _ := json.Marshal(ctx) // maps of strings always marshal
	return vars, string(b)
}

func (h *Host) projectID(key string) string {
	for _, p := range h.opts.Projects {
		if p.Key == key {
			return p.ID
		}
	}
	return ""
}

// issueContextToken answers the host page when a framed page calls
// AP.context.getToken(): a context token (qsh "context-qsh") for the frame's
// app and the page's user. Only the host page itself may ask: browsers send
// Sec-Fetch-Site, and other sites could not read the answer anyway (no CORS).
func (h *Host) issueContextToken(w http.ResponseWriter, r *http.Request) {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		http.Error(w, "only the preview host page may ask for tokens", http.StatusForbidden)
		return
	}
	var spec *frameSpec
	for i := range h.frames {
		if h.frames[i].ID == r.URL.Query().Get("frame") {
			spec = &h.frames[i]
		}
	}
	if spec == nil {
		http.Error(w, "unknown frame", http.StatusNotFound)
		return
	}
	account := AdminAccountID
	if r.URL.Query().Get("as") == "viewer" {
		account = ViewerAccountID
	}
	tok, err := h.sign(h.apps[spec.Product], connect.ContextQSH, account)
	if err != nil {
		h.log.Error("preview: context token", slog.String("error", err.Error()))
		http.Error(w, "could not sign a token", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "expiresIn": int(h.opts.TokenLifetime.Seconds())})
}

// browseIssue is where Keyline's links to a Jira issue land on the demo site.
func (h *Host) browseIssue(w http.ResponseWriter, r *http.Request) {
	key := strings.ToUpper(r.PathValue("key"))
	if !devops.ValidIssueKey(key) {
		http.NotFound(w, r)
		return
	}
	http.Redirect(w, r, "/?issue="+url.QueryEscape(key), http.StatusFound)
}

// openModule is where links to an app page (/plugins/servlet/ac/<app>/<module>)
// land: the host page, scrolled to that frame.
func (h *Host) openModule(w http.ResponseWriter, r *http.Request) {
	target := "/"
	for _, f := range h.frames {
		if h.apps[f.Product].key == r.PathValue("app") && f.Module == r.PathValue("module") {
			target = "/#" + f.ID
			break
		}
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// originOf is the origin the browser used for the host page.
func originOf(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Host
}
