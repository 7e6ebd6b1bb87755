package preview

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/descriptor"
)

// The demo tenants' base URL is this host, so Keyline's calls to "Jira" land
// here. The fake answers the questions app/jira asks, as Jira Cloud would:
// the preview's admin administers the site, both preview users may browse
// every issue the host knows and every project of the site, issue ids
// resolve to their keys and project keys to their ids. Each call
// must carry the app token Keyline signs (iss = app key, computed qsh), which
// checks Keyline's outbound signing on every page that asks.

// maxProductBody bounds what the fake reads of a request body.
const maxProductBody = 64 << 10

// verifyAppToken checks the Authorization header of a call from Keyline's
// Jira app. It returns the reason when the call must be refused.
func (h *Host) verifyAppToken(r *http.Request) error {
	app := h.apps[descriptor.Jira]
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "JWT ")
	if !ok || raw == "" {
		return errors.New("no JWT in the Authorization header")
	}
	var claims connect.Claims
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
		jwt.WithTimeFunc(h.opts.Now),
	).ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return app.tenant.SharedSecret, nil })
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if claims.Issuer != app.key {
		return fmt.Errorf("token issuer is %q, not the Jira app", claims.Issuer)
	}
	base := ""
	if u, err := url.Parse(app.tenant.BaseURL); err == nil {
		base = u.Path
	}
	want, err := connect.QSH(r.Method, r.URL.Path, r.URL.RawQuery, base)
	if err != nil || claims.QSH != want {
		return errors.New("token qsh does not match the request")
	}
	return nil
}

// refuse answers a product call that failed verification, as Jira does.
func (h *Host) refuse(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Warn("preview: refused a call to the demo Jira", slog.String("path", r.URL.Path), slog.String("reason", err.Error()))
	writeJSON(w, http.StatusUnauthorized, map[string]any{"errorMessages": []string{"Authentication failed: " + err.Error()}})
}

// checkPermissions is POST /rest/api/3/permissions/check.
func (h *Host) checkPermissions(w http.ResponseWriter, r *http.Request) {
	if err := h.verifyAppToken(r); err != nil {
		h.refuse(w, r, err)
		return
	}
	var in struct {
		AccountID          string   `json:"accountId"`
		GlobalPermissions  []string `json:"globalPermissions"`
		ProjectPermissions []struct {
			Permissions []string `json:"permissions"`
			Issues      []int64  `json:"issues"`
			Projects    []int64  `json:"projects"`
		} `json:"projectPermissions"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxProductBody)).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errorMessages": []string{"malformed body"}})
		return
	}
	known := in.AccountID == AdminAccountID || in.AccountID == ViewerAccountID
	type grant struct {
		Permission string  `json:"permission"`
		Issues     []int64 `json:"issues"`
		Projects   []int64 `json:"projects"`
	}
	out := struct {
		GlobalPermissions  []string `json:"globalPermissions"`
		ProjectPermissions []grant  `json:"projectPermissions"`
	}{GlobalPermissions: []string{}, ProjectPermissions: []grant{}}
	for _, p := range in.GlobalPermissions {
		if p == "ADMINISTER" && in.AccountID == AdminAccountID {
			out.GlobalPermissions = append(out.GlobalPermissions, p)
		}
	}
	for _, pp := range in.ProjectPermissions {
		for _, p := range pp.Permissions {
			g := grant{Permission: p, Issues: []int64{}, Projects: []int64{}}
			for _, id := range pp.Issues {
				if _, ok := h.issueByID(strconv.FormatInt(id, 10)); ok && known && p == "BROWSE_PROJECTS" {
					g.Issues = append(g.Issues, id)
				}
			}
			for _, id := range pp.Projects {
				if h.projectKey(strconv.FormatInt(id, 10)) != "" && known && p == "BROWSE_PROJECTS" {
					g.Projects = append(g.Projects, id)
				}
			}
			out.ProjectPermissions = append(out.ProjectPermissions, g)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// getIssue is GET /rest/api/3/issue/{id}, enough of it for the key.
func (h *Host) getIssue(w http.ResponseWriter, r *http.Request) {
	if err := h.verifyAppToken(r); err != nil {
		h.refuse(w, r, err)
		return
	}
	is, ok := h.issueByID(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"errorMessages": []string{"Issue does not exist or you do not have permission to see it."}})
		return
	}
	project := strings.SplitN(is.Key, "-", 2)[0]
	writeJSON(w, http.StatusOK, map[string]any{
		"id": is.ID, "key": is.Key,
		"fields": map[string]any{"project": map[string]string{"key": project, "id": h.projectID(project)}},
	})
}

// getProject is GET /rest/api/3/project/{key}, enough of it for the id.
func (h *Host) getProject(w http.ResponseWriter, r *http.Request) {
	if err := h.verifyAppToken(r); err != nil {
		h.refuse(w, r, err)
		return
	}
	key := r.PathValue("key")
	id := h.projectID(key)
	if id == "" {
		writeJSON(w, http.StatusNotFound, map[string]any{"errorMessages": []string{"No project could be found with key '" + key + "'."}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "key": key, "name": h.projectName(key)})
}

// projectKey is the key of the site's project with this id, or "".
func (h *Host) projectKey(id string) string {
	for _, p := range h.opts.Projects {
		if p.ID == id {
			return p.Key
		}
	}
	return ""
}

func (h *Host) projectName(key string) string {
	for _, p := range h.opts.Projects {
		if p.Key == key {
			return p.Name
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
