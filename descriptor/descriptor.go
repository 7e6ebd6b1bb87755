// Package descriptor renders the two Atlassian Connect app descriptors, one for
// Jira and one for Confluence. They are separate apps because Connect fails an
// install whose descriptor names a module the product does not know (a Confluence
// macro in Jira, say), and each app needs a base URL of its own.
package descriptor

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"text/template"
)

//go:embed *.json.tmpl
var files embed.FS

// Product names one of the two apps.
type Product string

// The two products Keyline ships an app for.
const (
	Jira       Product = "jira"
	Confluence Product = "confluence"
)

// Products lists both apps in a stable order.
var Products = []Product{Jira, Confluence}

// BasePath is the path under the public base URL where the product's app lives.
func (p Product) BasePath() string { return "/" + string(p) }

// Params fill a descriptor template.
type Params struct {
	// BaseURL is Keyline's public base URL without a trailing slash.
	BaseURL string
	// KeyPrefix is the configured app-key prefix; the app key is KeyPrefix + "." + product.
	KeyPrefix string
}

// Renderer renders descriptors from the embedded templates.
type Renderer struct {
	tmpl *template.Template
}

// NewRenderer parses the embedded templates.
func NewRenderer() (*Renderer, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).ParseFS(files, "*.json.tmpl")
	if err != nil {
		return nil, fmt.Errorf("descriptor: parse templates: %w", err)
	}
	return &Renderer{tmpl: t}, nil
}

// Render returns the descriptor of product p, indented and checked to be valid JSON.
func (r *Renderer) Render(p Product, params Params) ([]byte, error) {
	data := struct {
		Key, BaseURL, AppBaseURL, DescriptorURL string
	}{
		Key:           params.KeyPrefix + "." + string(p),
		BaseURL:       params.BaseURL,
		AppBaseURL:    params.BaseURL + p.BasePath(),
		DescriptorURL: params.BaseURL + p.BasePath() + "/atlassian-connect.json",
	}
	var buf bytes.Buffer
	if err := r.tmpl.ExecuteTemplate(&buf, string(p)+".json.tmpl", data); err != nil {
		return nil, fmt.Errorf("descriptor: render %s: %w", p, err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("descriptor: %s template is not valid JSON: %w", p, err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
