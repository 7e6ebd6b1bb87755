// Package kubernetes_test checks the manifests in this directory without a
// cluster: each document is decoded strictly into its typed Kubernetes API
// object (as the API server's strict field validation would), and the
// objects are checked against each other and against what the keyline
// binary reads and serves. cmd/keyline's container tests run the binary the
// way these manifests do (migrate, serve, probes, purge).
package kubernetes_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/secret"
)

const (
	// kustomizationFile lists what `kubectl apply -k` applies.
	kustomizationFile = "kustomization.yaml"
	// exampleSecretFile documents the Secret "keyline"; it is never applied.
	exampleSecretFile = "secret.example.yaml"
	// appName is the Deployment, Service, PDB, ConfigMap and Secret name.
	appName = "keyline"
	// postgresName is the trial PostgreSQL's StatefulSet and Service name.
	postgresName = "keyline-postgres"
	// imageUID is the uid the image runs as (Dockerfile: USER, distroless
	// :nonroot).
	imageUID = 65532
)

// newObject returns an empty typed object for a document's apiVersion and
// kind. Only the kinds these manifests use are known: a new kind needs a
// line here, and so a look at the checks below.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "batch/v1 CronJob":
		return &batchv1.CronJob{}, nil
	}
	return nil, fmt.Errorf("apiVersion %q kind %q is not one this test knows", apiVersion, kind)
}

// decodeStrict decodes one YAML document into its typed object the way the
// API server's strict field validation does: duplicate keys, unknown or
// misspelled fields (case-sensitively, unlike encoding/json) and values of
// the wrong type are errors.
func decodeStrict(doc []byte) (any, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return nil, fmt.Errorf("apiVersion/kind: %w", err)
	}
	obj, err := newObject(tm.APIVersion, tm.Kind)
	if err != nil {
		return nil, err
	}
	strict, err := sigsjson.UnmarshalStrict(j, obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("%s: %w", tm.Kind, errors.Join(strict...))
	}
	return obj, nil
}

// splitDocuments splits a multi-document YAML file at its "---" lines and
// drops documents that hold nothing but comments.
func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("split documents: %w", err)
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		if string(bytes.TrimSpace(j)) != "null" {
			docs = append(docs, doc)
		}
	}
}

// manifests is every object of the directory's manifests, by kind and name.
type manifests struct {
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	services     map[string]*corev1.Service
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	pdbs         map[string]*policyv1.PodDisruptionBudget
	cronJobs     map[string]*batchv1.CronJob
	// files are the manifest file names (not the kustomization).
	files []string
}

// loadManifests decodes every *.yaml file here but the kustomization.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	names, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := &manifests{
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		services: map[string]*corev1.Service{}, deployments: map[string]*appsv1.Deployment{},
		statefulSets: map[string]*appsv1.StatefulSet{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		cronJobs: map[string]*batchv1.CronJob{},
	}
	for _, name := range names {
		if name == kustomizationFile {
			continue
		}
		m.files = append(m.files, name)
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := splitDocuments(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(docs) == 0 {
			t.Errorf("%s: no document", name)
		}
		for i, doc := range docs {
			obj, err := decodeStrict(doc)
			if err != nil {
				t.Errorf("%s, document %d: %v", name, i+1, err)
				continue
			}
			if err := m.add(obj); err != nil {
				t.Errorf("%s, document %d: %v", name, i+1, err)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

// add files obj under its kind and name, refusing a second object of the
// same kind and name (kubectl would apply only the last).
func (m *manifests) add(obj any) error {
	put := func(set any, name string) error {
		v := reflect.ValueOf(set)
		if name == "" {
			return errors.New("no metadata.name")
		}
		if v.MapIndex(reflect.ValueOf(name)).IsValid() {
			return fmt.Errorf("a second %T named %q", obj, name)
		}
		v.SetMapIndex(reflect.ValueOf(name), reflect.ValueOf(obj))
		return nil
	}
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return put(m.configMaps, o.Name)
	case *corev1.Secret:
		return put(m.secrets, o.Name)
	case *corev1.Service:
		return put(m.services, o.Name)
	case *appsv1.Deployment:
		return put(m.deployments, o.Name)
	case *appsv1.StatefulSet:
		return put(m.statefulSets, o.Name)
	case *policyv1.PodDisruptionBudget:
		return put(m.pdbs, o.Name)
	case *batchv1.CronJob:
		return put(m.cronJobs, o.Name)
	}
	return fmt.Errorf("unexpected %T", obj)
}

// get returns set[name] or stops the test naming what is missing.
func get[T any](t *testing.T, set map[string]T, kind, name string) T {
	t.Helper()
	v, ok := set[name]
	if !ok {
		t.Fatalf("no %s named %q in the manifests", kind, name)
	}
	return v
}

// podTemplate is one workload's pod template, named for messages.
type podTemplate struct {
	name     string
	template *corev1.PodTemplateSpec
}

// podTemplates lists every workload's pod template.
func (m *manifests) podTemplates() []podTemplate {
	var pts []podTemplate
	for _, d := range m.deployments {
		pts = append(pts, podTemplate{"Deployment " + d.Name, &d.Spec.Template})
	}
	for _, s := range m.statefulSets {
		pts = append(pts, podTemplate{"StatefulSet " + s.Name, &s.Spec.Template})
	}
	for _, c := range m.cronJobs {
		pts = append(pts, podTemplate{"CronJob " + c.Name, &c.Spec.JobTemplate.Spec.Template})
	}
	slices.SortFunc(pts, func(a, b podTemplate) int { return strings.Compare(a.name, b.name) })
	return pts
}

// allContainers is a pod's init containers and containers.
func allContainers(spec *corev1.PodSpec) []corev1.Container {
	return append(slices.Clone(spec.InitContainers), spec.Containers...)
}

// container returns the container named name, or stops the test.
func container(t *testing.T, spec *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	t.Fatalf("no container named %q", name)
	return nil
}

// isKeyline reports whether c runs the Keyline image (as opposed to
// PostgreSQL): it is the image of the Deployment's main container.
func (m *manifests) isKeyline(t *testing.T, c corev1.Container) bool {
	d := get(t, m.deployments, "Deployment", appName)
	return c.Image == container(t, &d.Spec.Template.Spec, appName).Image
}

// keylineEnv is the environment that envFrom gives a Keyline container: the
// ConfigMap "keyline" and the example Secret "keyline", as the README
// creates them. Explicit env entries of the Deployment's containers are
// added too.
func (m *manifests) keylineEnv(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range get(t, m.configMaps, "ConfigMap", appName).Data {
		env[k] = v
	}
	s := get(t, m.secrets, "Secret", appName)
	for k, v := range s.StringData {
		env[k] = v
	}
	for k, v := range s.Data {
		env[k] = string(v)
	}
	d := get(t, m.deployments, "Deployment", appName)
	for _, c := range allContainers(&d.Spec.Template.Spec) {
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				env[e.Name] = e.Value
			}
		}
	}
	return env
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	if len(m.deployments) == 0 || len(m.configMaps) == 0 || len(m.services) == 0 || len(m.pdbs) == 0 || len(m.cronJobs) == 0 {
		t.Errorf("expected at least a Deployment, ConfigMap, Service, PDB and CronJob; got %d, %d, %d, %d, %d",
			len(m.deployments), len(m.configMaps), len(m.services), len(m.pdbs), len(m.cronJobs))
	}
}

// TestStrictDecodingRejects shows that decodeStrict catches the mistakes it
// is here for; a lenient decoder would pass every manifest test above.
func TestStrictDecodingRejects(t *testing.T) {
	const base = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n"
	tests := []struct {
		name, doc, want string
	}{
		{"unknown field", base + "  replica: 3\n", `unknown field "spec.replica"`},
		{"field in the wrong case", base + "  Replicas: 3\n", `unknown field "spec.Replicas"`},
		{"wrong type", base + "  replicas: \"3\"\n", "cannot unmarshal string"},
		{"duplicate key", base + "  replicas: 3\n  replicas: 2\n", `"replicas" already set`},
		{"misplaced field", base + "  template:\n    spec:\n      containers:\n        - name: a\n          containerport: 80\n", "unknown field"},
		{"bad quantity", base + "  template:\n    spec:\n      containers:\n        - name: a\n          resources:\n            limits:\n              memory: 64MB\n", "quantities must match"},
		{"unknown kind", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n", "not one this test knows"},
		{"old apiVersion", "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\n", "not one this test knows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeStrict([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodeStrict = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := decodeStrict([]byte(base + "  replicas: 3\n")); err != nil {
		t.Errorf("a valid document: %v", err)
	}
}

// kustomization is the part of kustomize's Kustomization these manifests
// use; decoding it strictly makes any other field a failure here, to be
// added once it is checked.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
		IncludeTemplates bool              `json:"includeTemplates"`
	} `json:"labels"`
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	m := loadManifests(t)
	data, err := os.ReadFile(kustomizationFile)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if strict, err := sigsjson.UnmarshalStrict(j, &k); err != nil || len(strict) > 0 {
		t.Fatalf("%s: %v %v", kustomizationFile, err, strict)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s: apiVersion %q kind %q", kustomizationFile, k.APIVersion, k.Kind)
	}
	var want []string
	for _, f := range m.files {
		if f != exampleSecretFile {
			want = append(want, f)
		}
	}
	got := slices.Clone(k.Resources)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s resources = %v, want every manifest but %s: %v", kustomizationFile, got, exampleSecretFile, want)
	}
	for _, l := range k.Labels {
		// Selectors are immutable on a Deployment: a common label added
		// to them would make the next apply fail on a running install.
		if l.IncludeSelectors {
			t.Errorf("%s: labels with includeSelectors change immutable selectors", kustomizationFile)
		}
	}
}

func TestReadmeNamesEveryManifest(t *testing.T) {
	m := loadManifests(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(m.files, kustomizationFile) {
		if !bytes.Contains(readme, []byte("`"+f+"`")) {
			t.Errorf("README.md does not describe %s", f)
		}
	}
}

// TestKeylineSettings checks the KEYLINE_* variables of the ConfigMap and
// the example Secret against app/config: each must be a setting Keyline
// reads, and together they must pass its validation.
func TestKeylineSettings(t *testing.T) {
	m := loadManifests(t)
	known := map[string]bool{}
	for f := range reflect.TypeFor[config.Config]().Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" {
			known[name] = true
		}
	}
	env := m.keylineEnv(t)
	for name := range env {
		if !known[name] {
			t.Errorf("%s is set in the manifests but is not a Keyline setting (app/config)", name)
		}
	}
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatalf("the manifests' settings do not load: %v", err)
	}
	if cfg.Embedded() {
		t.Error("the manifests run embedded SQLite; replicas need KEYLINE_DATABASE_URL (PostgreSQL)")
	}
	// The example key is a placeholder: an unedited example must stop the
	// pods rather than encrypt every site's secret with a published key.
	if _, err := secret.ParseKey(env["KEYLINE_SECRET_KEY"]); err == nil {
		t.Errorf("%s: KEYLINE_SECRET_KEY is a usable key; keep it a placeholder that Keyline refuses", exampleSecretFile)
	}
}

// port returns the port of a listen address such as ":8080".
func port(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return int32(n)
}

// containerPort resolves a probe's or Service's target port (a number or a
// port name) against c's declared ports.
func containerPort(c *corev1.Container, target intstr.IntOrString) (int32, error) {
	if target.Type == intstr.Int {
		return target.IntVal, nil
	}
	for _, p := range c.Ports {
		if p.Name == target.StrVal {
			return p.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.Name, target.StrVal)
}

// TestPortsAndProbes checks that the Deployment's ports, probes, Service and
// scrape annotations agree with the addresses the ConfigMap makes Keyline
// listen on. cmd/keyline's container test requests the same probe paths
// from the running binary.
func TestPortsAndProbes(t *testing.T) {
	m := loadManifests(t)
	env := m.keylineEnv(t)
	d := get(t, m.deployments, "Deployment", appName)
	c := container(t, &d.Spec.Template.Spec, appName)
	httpPort, metricsPort := port(t, env["KEYLINE_ADDR"]), port(t, env["KEYLINE_METRICS_ADDR"])

	probes := []struct {
		name  string
		probe *corev1.Probe
		// path is what the probe must request: liveness and startup use
		// /healthz, which has no dependencies, so a database outage does
		// not restart every replica; readiness uses /readyz, which pings
		// the database.
		path string
	}{
		{"startupProbe", c.StartupProbe, "/healthz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Fatalf("%s: no httpGet probe", p.name)
			}
			g := p.probe.HTTPGet
			if g.Path != p.path {
				t.Errorf("%s requests %q, want %q", p.name, g.Path, p.path)
			}
			got, err := containerPort(c, g.Port)
			if err != nil {
				t.Fatal(err)
			}
			if got != httpPort {
				t.Errorf("%s requests port %d; KEYLINE_ADDR %q listens on %d", p.name, got, env["KEYLINE_ADDR"], httpPort)
			}
			if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
				t.Errorf("%s scheme %s; Keyline serves plain http behind the ingress", p.name, g.Scheme)
			}
		})
	}

	svc := get(t, m.services, "Service", appName)
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service %s has %d ports, want the http one alone (metrics stay pod-internal)", svc.Name, len(svc.Spec.Ports))
	}
	if got, err := containerPort(c, svc.Spec.Ports[0].TargetPort); err != nil || got != httpPort {
		t.Errorf("Service %s targets port %d (%v), want KEYLINE_ADDR's %d", svc.Name, got, err, httpPort)
	}
	if got, err := containerPort(c, intstr.FromString("metrics")); err != nil || got != metricsPort {
		t.Errorf("container port \"metrics\" = %d (%v), want KEYLINE_METRICS_ADDR's %d", got, err, metricsPort)
	}
	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/port"] != strconv.Itoa(int(metricsPort)) || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v, want port %d and path /metrics", ann, metricsPort)
	}
}

// TestSelectors checks that every selector picks the pods it is meant for,
// and the Keyline Service and PDB no others (the purge job's pods serve no
// traffic and are not replicas).
func TestSelectors(t *testing.T) {
	m := loadManifests(t)
	d := get(t, m.deployments, "Deployment", appName)
	pg := get(t, m.statefulSets, "StatefulSet", postgresName)
	purge := get(t, m.cronJobs, "CronJob", "keyline-purge")
	podLabels := map[string]labels.Set{
		"keyline":  d.Spec.Template.Labels,
		"postgres": pg.Spec.Template.Labels,
		"purge":    purge.Spec.JobTemplate.Spec.Template.Labels,
	}
	tests := []struct {
		name     string
		selector *metav1.LabelSelector
		selects  string
	}{
		{"Deployment keyline", d.Spec.Selector, "keyline"},
		{"Service keyline", &metav1.LabelSelector{MatchLabels: get(t, m.services, "Service", appName).Spec.Selector}, "keyline"},
		{"PodDisruptionBudget keyline", get(t, m.pdbs, "PodDisruptionBudget", appName).Spec.Selector, "keyline"},
		{"StatefulSet keyline-postgres", pg.Spec.Selector, "postgres"},
		{"Service keyline-postgres", &metav1.LabelSelector{MatchLabels: get(t, m.services, "Service", postgresName).Spec.Selector}, "postgres"},
	}
	for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
		tests = append(tests, struct {
			name     string
			selector *metav1.LabelSelector
			selects  string
		}{"Deployment keyline topologySpreadConstraints", c.LabelSelector, "keyline"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.selector == nil || (len(tt.selector.MatchLabels) == 0 && len(tt.selector.MatchExpressions) == 0) {
				t.Fatal("empty selector: it would select every pod")
			}
			sel, err := metav1.LabelSelectorAsSelector(tt.selector)
			if err != nil {
				t.Fatal(err)
			}
			for pods, set := range podLabels {
				if got, want := sel.Matches(set), pods == tt.selects; got != want {
					t.Errorf("selector %s matches the %s pods (labels %v): %v, want %v", sel, pods, set, got, want)
				}
			}
		})
	}
}

// TestPodSecurity checks every pod and container runs without root,
// privilege escalation or capabilities, and every Keyline container with a
// read-only root filesystem as the image's user.
func TestPodSecurity(t *testing.T) {
	m := loadManifests(t)
	for _, pt := range m.podTemplates() {
		t.Run(pt.name, func(t *testing.T) {
			spec := &pt.template.Spec
			pod := spec.SecurityContext
			if pod == nil {
				pod = &corev1.PodSecurityContext{}
			}
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
				t.Error("automountServiceAccountToken is not false: no container here talks to the API server")
			}
			if pod.SeccompProfile == nil || pod.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Error("pod seccompProfile is not RuntimeDefault")
			}
			for _, c := range allContainers(spec) {
				sc := c.SecurityContext
				if sc == nil {
					t.Errorf("container %s: no securityContext", c.Name)
					continue
				}
				nonRoot := pod.RunAsNonRoot
				if sc.RunAsNonRoot != nil {
					nonRoot = sc.RunAsNonRoot
				}
				if nonRoot == nil || !*nonRoot {
					t.Errorf("container %s: runAsNonRoot is not true", c.Name)
				}
				if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
				}
				if sc.Privileged != nil && *sc.Privileged {
					t.Errorf("container %s: privileged", c.Name)
				}
				if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
					t.Errorf("container %s: capabilities %+v, want drop [ALL] and nothing added", c.Name, sc.Capabilities)
				}
				if !m.isKeyline(t, c) {
					// PostgreSQL writes its sockets and lock files
					// outside the mounted volumes.
					continue
				}
				if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
				}
				uid := pod.RunAsUser
				if sc.RunAsUser != nil {
					uid = sc.RunAsUser
				}
				if uid == nil || *uid != imageUID {
					t.Errorf("container %s: runAsUser %v, want the image's user %d", c.Name, uid, imageUID)
				}
			}
		})
	}
}

// TestResources checks that every container has CPU and memory requests
// and a memory limit at least its request. CPU limits are left out on
// purpose (README.md: a busy replica is not throttled), but one that is set
// must cover its request.
func TestResources(t *testing.T) {
	m := loadManifests(t)
	for _, pt := range m.podTemplates() {
		for _, c := range allContainers(&pt.template.Spec) {
			t.Run(pt.name+"/"+c.Name, func(t *testing.T) {
				req, lim := c.Resources.Requests, c.Resources.Limits
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					q, ok := req[r]
					if !ok || q.Sign() <= 0 {
						t.Errorf("no %s request", r)
						continue
					}
					l, ok := lim[r]
					if !ok {
						if r == corev1.ResourceMemory {
							t.Error("no memory limit")
						}
						continue
					}
					if l.Cmp(q) < 0 {
						t.Errorf("%s limit %s below its request %s", r, l.String(), q.String())
					}
				}
			})
		}
	}
}

// TestCommands checks what each Keyline container runs: the image's
// entrypoint (no command override) with migrate, serve or purge, all on the
// same image so the init step migrates for the version that then serves.
func TestCommands(t *testing.T) {
	m := loadManifests(t)
	d := get(t, m.deployments, "Deployment", appName)
	purge := get(t, m.cronJobs, "CronJob", "keyline-purge")
	image := container(t, &d.Spec.Template.Spec, appName).Image
	var initArgs [][]string
	for _, c := range d.Spec.Template.Spec.InitContainers {
		initArgs = append(initArgs, c.Args)
	}
	if !slices.ContainsFunc(initArgs, func(a []string) bool { return slices.Equal(a, []string{"migrate"}) }) {
		t.Errorf("Deployment init containers run %v, want one running `keyline migrate`", initArgs)
	}
	tests := []struct {
		name string
		pod  *corev1.PodSpec
		args [][]string
	}{
		{"Deployment keyline", &d.Spec.Template.Spec, [][]string{{"migrate"}, {"serve"}}},
		{"CronJob keyline-purge", &purge.Spec.JobTemplate.Spec.Template.Spec, [][]string{{"purge"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := allContainers(tt.pod)
			if len(cs) != len(tt.args) {
				t.Fatalf("%d containers, want %d", len(cs), len(tt.args))
			}
			for i, c := range cs {
				if len(c.Command) > 0 {
					t.Errorf("container %s overrides the image's entrypoint with %v", c.Name, c.Command)
				}
				if !slices.Equal(c.Args, tt.args[i]) {
					t.Errorf("container %s runs keyline %v, want keyline %v", c.Name, c.Args, tt.args[i])
				}
				if c.Image != image {
					t.Errorf("container %s runs image %q, not the Deployment's %q", c.Name, c.Image, image)
				}
				if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
					return e.ConfigMapRef != nil && e.ConfigMapRef.Name == appName
				}) || !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
					return e.SecretRef != nil && e.SecretRef.Name == appName
				}) {
					t.Errorf("container %s does not take its settings from the ConfigMap and Secret %q", c.Name, appName)
				}
			}
		})
	}
	if purge.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("CronJob %s concurrencyPolicy %q, want Forbid", purge.Name, purge.Spec.ConcurrencyPolicy)
	}
}

// TestAvailability checks that voluntary disruptions and rollouts keep
// replicas serving: at least two replicas, a PDB that keeps one up and
// still lets a node drain, and a rollout that never goes below the count.
func TestAvailability(t *testing.T) {
	m := loadManifests(t)
	d := get(t, m.deployments, "Deployment", appName)
	pdb := get(t, m.pdbs, "PodDisruptionBudget", appName)
	if d.Spec.Replicas == nil {
		t.Fatal("Deployment sets no replicas (the default is 1), want at least 2")
	}
	if *d.Spec.Replicas < 2 {
		t.Fatalf("Deployment replicas %d, want at least 2", *d.Spec.Replicas)
	}
	replicas := int(*d.Spec.Replicas)
	// The disruption controller rounds both fields up.
	var keep int
	var err error
	switch {
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable != nil:
		t.Fatal("PDB sets both minAvailable and maxUnavailable")
	case pdb.Spec.MinAvailable != nil:
		keep, err = intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, replicas, true)
	case pdb.Spec.MaxUnavailable != nil:
		var down int
		down, err = intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, replicas, true)
		keep = replicas - down
	default:
		t.Fatal("PDB sets neither minAvailable nor maxUnavailable")
	}
	if err != nil {
		t.Fatal(err)
	}
	if keep < 1 {
		t.Errorf("PDB keeps %d of %d replicas during a drain, want at least 1", keep, replicas)
	}
	if keep >= replicas {
		t.Errorf("PDB keeps %d of %d replicas: no node could ever be drained", keep, replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil {
		t.Fatalf("Deployment strategy %+v, want RollingUpdate with maxUnavailable set", d.Spec.Strategy)
	}
	if down, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, replicas, false); err != nil || down != 0 {
		t.Errorf("rollout maxUnavailable %s (%v): a rollout would go below %d replicas", ru.MaxUnavailable.String(), err, replicas)
	}
}

// TestShutdownFitsTheGracePeriod checks that the preStop pause plus
// KEYLINE_SHUTDOWN_GRACE ends before the kubelet's SIGKILL, so in-flight
// requests finish.
func TestShutdownFitsTheGracePeriod(t *testing.T) {
	m := loadManifests(t)
	cfg, err := config.Load(m.keylineEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	d := get(t, m.deployments, "Deployment", appName)
	spec := d.Spec.Template.Spec
	var pause time.Duration
	if l := container(t, &spec, appName).Lifecycle; l != nil && l.PreStop != nil {
		if l.PreStop.Sleep == nil {
			t.Fatalf("preStop %+v: the image has no shell, so only a sleep action works", l.PreStop)
		}
		pause = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
	}
	grace := 30 * time.Second // Kubernetes' default
	if spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	}
	if pause+cfg.ShutdownGrace >= grace {
		t.Errorf("preStop %s + KEYLINE_SHUTDOWN_GRACE %s >= terminationGracePeriodSeconds %s", pause, cfg.ShutdownGrace, grace)
	}
}

// TestTrialPostgres checks that the example KEYLINE_DATABASE_URL reaches
// the trial PostgreSQL: its Service, port, user and database.
func TestTrialPostgres(t *testing.T) {
	m := loadManifests(t)
	env := m.keylineEnv(t)
	svc := get(t, m.services, "Service", postgresName)
	sts := get(t, m.statefulSets, "StatefulSet", postgresName)
	c := container(t, &sts.Spec.Template.Spec, "postgres")
	if sts.Spec.ServiceName != svc.Name {
		t.Errorf("StatefulSet serviceName %q, want the Service %q", sts.Spec.ServiceName, svc.Name)
	}
	pgEnv := map[string]string{}
	for _, e := range c.Env {
		pgEnv[e.Name] = e.Value
	}
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service %s: %d ports, want 1", svc.Name, len(svc.Spec.Ports))
	}
	if got, err := containerPort(c, svc.Spec.Ports[0].TargetPort); err != nil || got != 5432 {
		t.Errorf("Service %s targets %d (%v), want PostgreSQL's 5432", svc.Name, got, err)
	}
	// postgres://user:password@host:port/db?...
	re := regexp.MustCompile(`^postgres(?:ql)?://([^:@/]+):[^@/]*@([^:/]+):(\d+)/([^?]+)`)
	u := re.FindStringSubmatch(env["KEYLINE_DATABASE_URL"])
	if u == nil {
		t.Fatalf("KEYLINE_DATABASE_URL %q is not postgres://user:password@host:port/db", env["KEYLINE_DATABASE_URL"])
	}
	checks := []struct{ what, got, want string }{
		{"user", u[1], pgEnv["POSTGRES_USER"]},
		{"host", u[2], svc.Name},
		{"port", u[3], strconv.Itoa(int(svc.Spec.Ports[0].Port))},
		{"database", u[4], pgEnv["POSTGRES_DB"]},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("KEYLINE_DATABASE_URL %s %q, want %q", ch.what, ch.got, ch.want)
		}
	}
	pw := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "POSTGRES_PASSWORD" })
	if pw < 0 || c.Env[pw].ValueFrom == nil || c.Env[pw].ValueFrom.SecretKeyRef == nil {
		t.Error("POSTGRES_PASSWORD does not come from a Secret")
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("StatefulSet %s: %d volume claim templates, want 1", sts.Name, len(sts.Spec.VolumeClaimTemplates))
	}
	data := sts.Spec.VolumeClaimTemplates[0]
	if !slices.ContainsFunc(c.VolumeMounts, func(v corev1.VolumeMount) bool {
		return v.Name == data.Name && strings.HasPrefix(pgEnv["PGDATA"], v.MountPath+"/")
	}) {
		t.Errorf("PGDATA %q is not inside the %q volume", pgEnv["PGDATA"], data.Name)
	}
	if q := data.Spec.Resources.Requests[corev1.ResourceStorage]; q.Cmp(resource.MustParse("1Gi")) < 0 {
		t.Errorf("PostgreSQL volume %s, want at least 1Gi", q.String())
	}
}

// TestImageUser checks the pods' uid against the Dockerfile's USER line.
func TestImageUser(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var user string
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) == 2 && strings.EqualFold(f[0], "USER") {
			user = f[1] // the last one is the final stage's
		}
	}
	if want := fmt.Sprintf("%d:%d", imageUID, imageUID); user != want {
		t.Errorf("Dockerfile USER %q, want %q as the manifests' runAsUser/runAsGroup", user, want)
	}
}
