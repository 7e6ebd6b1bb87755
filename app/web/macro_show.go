package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/templates"
)

// maxMacroProjects bounds the project list of one macro.
const maxMacroProjects = 20

// showMacro renders the Confluence macro. Parameter mistakes are explained in
// the page itself: the author sees them while editing.
func (s *Server) showMacro(c echo.Context) error {
	v := templates.MacroView{
		Page:        s.page(s.confluence, "Keyline DevOps"),
		View:        c.QueryParam("view"),
		Service:     strings.TrimSpace(c.QueryParam("service")),
		Environment: strings.TrimSpace(c.QueryParam("environment")),
		SiteHost:    hostOf(identity(c).Tenant.DisplayURL),
	}
	switch v.View {
	case "":
		v.View = "status"
	case "status", "deployments":
	default:
		v.Problems = append(v.Problems, fmt.Sprintf("The view %q is not one Keyline knows; choose status or deployments.", v.View))
		v.View = "status"
	}
	for _, p := range strings.Split(c.QueryParam("projects"), ",") {
		p = strings.ToUpper(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if !devops.ValidProjectKey(p) {
			v.Problems = append(v.Problems, fmt.Sprintf("%q is not a Jira project key.", p))
			continue
		}
		v.Projects = append(v.Projects, p)
	}
	if len(v.Projects) == 0 && len(v.Problems) == 0 {
		v.Problems = append(v.Problems, "Name at least one Jira project key in the macro's settings.")
	}
	if len(v.Projects) > maxMacroProjects {
		v.Problems = append(v.Problems, fmt.Sprintf("A macro shows at most %d projects.", maxMacroProjects))
		v.Projects = v.Projects[:maxMacroProjects]
	}
	if len(v.Service) > 200 || len(v.Environment) > 200 {
		return badRequest("service and environment are limited to 200 characters")
	}
	link, err := s.jiraBeside(c)
	if err != nil {
		return err
	}
	v.Jira = link
	return s.render(c, http.StatusOK, templates.Macro(v))
}
