// Package browsertest loads Keyline's pages in headless Chromium the way Jira
// and Confluence show them: framed by the preview host page (app/preview),
// with all.js answered by the preview's AP stand-in. Its tests need Debian's
// chromium at /usr/bin/chromium (.ci/run installs it); without it they skip,
// or fail when CI=true. Screenshots go to $KEYLINE_ARTIFACTS, else to
// testdata/artifacts beside the tests.
package browsertest
