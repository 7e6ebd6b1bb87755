package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/templates"
)

// sourceKindLabels names each source kind as its provider spells itself.
var sourceKindLabels = map[string]string{
	store.SourceGitHub:    "GitHub",
	store.SourceGitLab:    "GitLab",
	store.SourceBitbucket: "Bitbucket",
	store.SourcePagerDuty: "PagerDuty",
	store.SourceOpsgenie:  "Opsgenie",
	store.SourceGeneric:   "Generic API",
}

// environmentTypeOrder is the order rules are tried in (docs/ingest.md,
// "Environment rules"), so the page lists them the way they act.
var environmentTypeOrder = []struct {
	typ   devops.EnvironmentType
	label string
}{
	{devops.EnvironmentDevelopment, "Development"},
	{devops.EnvironmentTesting, "Testing"},
	{devops.EnvironmentStaging, "Staging"},
	{devops.EnvironmentProduction, "Production"},
}

// showConfigure renders the configure page of either app. Jira's lists the
// site's webhook sources, so only the site's Jira administrators may see it:
// Jira shows the page to them alone (user_is_admin), but the URL itself must
// not rely on that.
func (s *Server) showConfigure(a app) echo.HandlerFunc {
	product := map[string]string{"jira": "Jira", "confluence": "Confluence"}[string(a.product)]
	show := func(c echo.Context) error {
		t := identity(c).Tenant
		v := templates.ConfigureView{
			Page:          s.page(a, "Configure Keyline"),
			Product:       product,
			SiteURL:       t.DisplayURL,
			SiteHost:      hostOf(t.DisplayURL),
			AppKey:        a.key,
			InstalledAt:   t.InstalledAt.UTC().Format("2 January 2006, 15:04 UTC"),
			DescriptorURL: a.baseURL + "/atlassian-connect.json",
			RetentionDays: s.deps.RetentionDays,
		}
		if a.product == s.confluence.product {
			link, err := s.jiraBeside(c)
			if err != nil {
				return err
			}
			v.Jira = &link
			if link.Connected {
				v.JiraConfigureURL = s.jiraConfigureURL(link.SiteURL)
			}
		} else {
			sources, err := s.sourcesView(c)
			if err != nil {
				return err
			}
			v.Sources = &sources
		}
		return s.render(c, http.StatusOK, templates.ConfigurePage(v))
	}
	if a.product == s.jira.product {
		// The API's own check, so the page and the API agree on who is an
		// administrator; a refusal renders the HTML error page.
		return s.requireAdmin(show)
	}
	return show
}

// sourcesView lists the verified tenant's sources for the Jira configure page.
// It carries no webhook URL or secret: the store cannot give them back.
func (s *Server) sourcesView(c echo.Context) (templates.SourcesView, error) {
	srcs, err := s.deps.Store.ListSources(c.Request().Context(), identity(c).Tenant)
	if err != nil {
		return templates.SourcesView{}, fmt.Errorf("list sources for the configure page: %w", err)
	}
	v := templates.SourcesView{
		APIPath:       s.jira.basePath + "/api/sources",
		Max:           store.MaxSourcesPerTenant,
		MaxName:       store.MaxSourceNameLen,
		MaxDeliveries: store.MaxDeliveriesPerSource,
		Items:         make([]templates.SourceRow, 0, len(srcs)),
	}
	for _, k := range store.SourceKinds() {
		v.Kinds = append(v.Kinds, templates.SourceKind{Value: k, Label: kindLabel(k)})
		if store.TakesProvidedSecret(k) {
			v.SecretKinds = append(v.SecretKinds, k)
		}
	}
	now := s.deps.Now()
	for _, src := range srcs {
		row := templates.SourceRow{ID: src.ID, Kind: src.Kind, KindLabel: kindLabel(src.Kind), Name: src.Name,
			Created: moment(src.CreatedAt, now), TakesSecret: store.TakesProvidedSecret(src.Kind), SecretProvided: src.SecretProvided}
		if src.PreviousSecretUntil != nil && src.PreviousSecretUntil.After(now) {
			row.PreviousSecretUntil = moment(*src.PreviousSecretUntil, now)
		}
		row.Rules, row.RulesJSON = rulesSummary(src.EnvironmentRules)
		v.Items = append(v.Items, row)
	}
	return v, nil
}

// rulesSummary lists stored environment rules per type and indents them for
// the editor. Stored rules were checked when set; if they cannot be read the
// page shows the raw document rather than failing.
func rulesSummary(doc json.RawMessage) ([]templates.RuleSummary, string) {
	if len(doc) == 0 {
		return nil, "{}"
	}
	var rules devops.EnvironmentRules
	if err := json.Unmarshal(doc, &rules); err != nil {
		return nil, string(doc)
	}
	var out []templates.RuleSummary
	for _, t := range environmentTypeOrder {
		if globs := rules[t.typ]; len(globs) > 0 {
			out = append(out, templates.RuleSummary{Type: string(t.typ), Label: t.label, Globs: globs})
		}
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, doc, "", "  "); err != nil {
		return out, string(doc)
	}
	return out, buf.String()
}

func kindLabel(kind string) string {
	if l, ok := sourceKindLabels[kind]; ok {
		return l
	}
	return kind
}

// jiraConfigureURL is where Jira shows the Jira app's configure page.
func (s *Server) jiraConfigureURL(siteURL string) string {
	return siteURL + "/plugins/servlet/ac/" + url.PathEscape(s.jira.key) + "/configure"
}

// jiraBeside finds the Jira app installed on the same site as the verified
// Confluence tenant; the Confluence app shows that tenant's data and no other.
func (s *Server) jiraBeside(c echo.Context) (templates.SiteLink, error) {
	t, err := s.jiraOnSite(c)
	if err != nil || t == nil {
		return templates.SiteLink{}, err
	}
	return templates.SiteLink{Connected: true, SiteURL: t.DisplayURL}, nil
}
