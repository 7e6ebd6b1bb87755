// Package devops is Keyline's domain: the DevOps entities, how they link to Jira
// issues, and the metrics computed from them. It knows nothing of HTTP, Connect
// or the database.
//
// The package is pure: every function here is deterministic, safe for
// concurrent use and free of I/O, so parsers, the store and the web layer can
// share one set of rules for issue keys, environment types and entity states.
package devops
