// Package static holds the CSS, JavaScript and icons that Keyline's pages load,
// embedded in the binary so a deployment is one file.
package static

import "embed"

// FS holds every static asset under its path relative to this folder.
//
//go:embed css js icons
var FS embed.FS
