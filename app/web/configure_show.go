package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/templates"
)

// showConfigure renders the configure page of either app.
func (s *Server) showConfigure(a app) echo.HandlerFunc {
	product := map[string]string{"jira": "Jira", "confluence": "Confluence"}[string(a.product)]
	return func(c echo.Context) error {
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
		}
		return s.render(c, http.StatusOK, templates.ConfigurePage(v))
	}
}

// jiraBeside finds the Jira app installed on the same site as the verified
// Confluence tenant; the Confluence app shows that tenant's data and no other.
func (s *Server) jiraBeside(c echo.Context) (templates.SiteLink, error) {
	ts, err := s.deps.Store.TenantsOnHost(c.Request().Context(), identity(c).Tenant, "jira")
	if err != nil {
		return templates.SiteLink{}, fmt.Errorf("find the Jira app on this site: %w", err)
	}
	for _, t := range ts {
		if t.Installed && t.AppKey == s.jira.key {
			return templates.SiteLink{Connected: true, SiteURL: t.DisplayURL}, nil
		}
	}
	return templates.SiteLink{}, nil
}
