package store

import (
	"slices"
	"strings"

	"gorm.io/gorm"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/tenant"
)

// deployments.linked_projects (migration 00011) holds the projects of the
// issues a deployment is linked to, space-separated and in no particular
// order, so that a project's release figures filter deployments inside the
// covering index instead of probing issue_links once per deployment of the
// window: half a second for a project's year. issue_links stays the truth;
// every write of a deployment's links keeps the copy in step.

// projectsOf returns the distinct projects of keys, sorted.
func projectsOf(keys []string) []string {
	var out []string
	for _, k := range keys {
		if p := devops.ProjectOf(k); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// linkedProjectsLike is the LIKE pattern (ESCAPE '\') that matches project
// p in ' ' || linked_projects || ' '.
func linkedProjectsLike(p string) string {
	return "% " + strings.ReplaceAll(p, "_", `\_`) + " %"
}

// addLinkedProjects adds the projects of keys to deployment id's copy, one
// project per statement so that each is added atomically and only when
// missing, whichever transaction links the deployment at the same time.
func (w *batchWriter) addLinkedProjects(id string, keys []string) error {
	for _, p := range projectsOf(keys) {
		err := w.exec(`UPDATE deployments SET linked_projects = TRIM(linked_projects || ' ' || ?)
			WHERE tenant_id = ? AND id = ? AND (' ' || linked_projects || ' ') NOT LIKE ? ESCAPE '\'`,
			p, w.t.ID, id, linkedProjectsLike(p))
		if err != nil {
			return err
		}
	}
	return nil
}

// syncLinkedProjects recomputes the copy of each of deployments ids from
// its links, after links were removed.
func syncLinkedProjects(tx *gorm.DB, t *tenant.Tenant, ids []string) error {
	for _, part := range chunks(ids, maxInList) {
		keys := map[string][]string{}
		rows, err := tx.Raw(`SELECT entity_id, issue_key FROM issue_links
			WHERE tenant_id = ? AND entity_type = 'deployment' AND entity_id IN (`+inList(len(part))+`)`,
			anys([]any{t.ID}, part)...).Rows()
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, key string
			if err := rows.Scan(&id, &key); err != nil {
				rows.Close()
				return err
			}
			keys[id] = append(keys[id], key)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range part {
			err := tx.Exec(`UPDATE deployments SET linked_projects = ? WHERE tenant_id = ? AND id = ?`,
				strings.Join(projectsOf(keys[id]), " "), t.ID, id).Error
			if err != nil {
				return err
			}
		}
	}
	return nil
}
