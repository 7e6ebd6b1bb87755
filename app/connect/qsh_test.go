package connect

import (
	"net/url"
	"strings"
	"testing"
)

// v3Query is the iframe query of vectors V3–V5 (AJWT test suite).
const v3Query = "lic=none&tz=Australia%2FSydney&cp=%2Fjira&user_key=&loc=en-US&user_id=&jwt=ABC.DEF.GHI" +
	"&xdm_e=http%3A%2F%2Fstorm%3A2990&xdm_c=channel-servlet-hello-world&xdm_p=1"

// v6Query carries raw spaces as '+', the form encoding products use.
const v6Query = "zee_last=param&repeated=parameter+1&first=param&repeated=parameter+2&repeated=Parameter+2"

const v6Canonical = "GET&/path/to/service&first=param&repeated=Parameter%202,parameter%201,parameter%202&zee_last=param"

// v11Query builds the V11 query from its published parameters, in the order
// listed, form-encoded as the product would send them.
func v11Query() string {
	params := [][2]string{
		{"xdm_e", "https://kabakumov.atlassian.net"},
		{"xdm_c", "channel-com.github.integration.konstantin__github-post-install-page"},
		{"cp", ""},
		{"xdm_deprecated_addon_key_do_not_use", "com.github.integration.konstantin"},
		{"lic", "none"},
		{"cv", "1001.0.0-SNAPSHOT"},
	}
	parts := make([]string, 0, len(params)+1)
	for _, p := range params {
		parts = append(parts, url.QueryEscape(p[0])+"="+url.QueryEscape(p[1]))
	}
	// The product appends the token; it must not change the hash.
	parts = append(parts, "jwt=eyJ.eyJ.sig")
	return strings.Join(parts, "&")
}

// TestPublishedVectors covers V1–V13 of spec §4.6. want is compared with the
// canonical request when canonical is set, and with the qsh when qsh is set.
func TestPublishedVectors(t *testing.T) {
	tests := []struct {
		name                         string
		method, path, rawQuery, base string
		canonical, qsh               string
	}{
		{name: "V1 path no query", method: "GET", path: "/path",
			canonical: "GET&/path&",
			qsh:       "799be84a7fa35570087163c0cd9af3abff7ac05c2c12ba0bb1d7eebc984b3ac2"},
		{name: "V2 empty path", method: "GET", path: "",
			canonical: "GET&/&",
			qsh:       "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239"},
		{name: "V2 root path", method: "GET", path: "/",
			canonical: "GET&/&",
			qsh:       "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239"},
		{name: "V3 iframe query", method: "GET", path: "/hello-world", rawQuery: v3Query,
			canonical: "GET&/hello-world&cp=%2Fjira&lic=none&loc=en-US&tz=Australia%2FSydney&user_id=&user_key=" +
				"&xdm_c=channel-servlet-hello-world&xdm_e=http%3A%2F%2Fstorm%3A2990&xdm_p=1",
			qsh: "8063ff4ca1e41df7bc90c8ab6d0f6207d491cf6dad7c66ea797b4614b71922e9"},
		// V4 is the hash AJWT computes over the same parameters sent as a
		// form body. Keyline does not fall back to body parameters (see the
		// report), but the canonicaliser must give that hash when handed the
		// body as the query, so the fallback stays a one-line change.
		{name: "V4 form body as query", method: "POST", path: "/hello-world", rawQuery: v3Query,
			qsh: "d7e7f00660965fc15745b2c423a89b85d0853c4463faca362e0371d008eb0927"},
		{name: "V5 post no body", method: "POST", path: "/hello-world",
			canonical: "POST&/hello-world&",
			qsh:       "6f95f3738e1b037a3bebbe0ad237d80fdbc1d5ae452e98ce03a9c004c178ebb4"},
		{name: "V6 repeated params", method: "GET", path: "/path/to/service", rawQuery: v6Query,
			canonical: v6Canonical,
			qsh:       "9ae6056cf66c00e76fa15e66fd26091fecd7356eec2f2c30629835b656799f66"},
		{name: "V6 spaces as %20", method: "GET", path: "/path/to/service",
			rawQuery:  strings.ReplaceAll(v6Query, "+", "%20"),
			canonical: v6Canonical},
		{name: "V7 base path stripped", method: "GET", path: "/base/path/to/service", rawQuery: v6Query, base: "/base",
			canonical: v6Canonical,
			qsh:       "9ae6056cf66c00e76fa15e66fd26091fecd7356eec2f2c30629835b656799f66"},
		{name: "V8 valueless params", method: "GET", path: "/hello-world", rawQuery: "a&b=foo&c",
			canonical: "GET&/hello-world&a=&b=foo&c="},
		{name: "V9 ampersand in path", method: "POST", path: "/jira/rest/api/2/project/jira&a=b&c=d", rawQuery: "x=y", base: "/jira",
			canonical: "POST&/rest/api/2/project/jira%26a=b%26c=d&x=y"},
		{name: "V10 case-sensitive order", method: "GET", path: "/path/to/service", rawQuery: "a=1&A=2&b=3&B=4",
			canonical: "GET&/path/to/service&A=2&B=4&a=1&b=3",
			qsh:       "70282c7cf82834bd5a3d6dacda1b4ccd5cf5860a63a1fa2fb86b64d576e6a1d5"},
		{name: "V11 modern Jira iframe", method: "GET", path: "/jira/configuration", rawQuery: v11Query(),
			qsh: "345c5da1c34c5126155b18ff4522446c89cc017debe4878bfa6056cacd5245ae"},
		{name: "V12 real 2014 token trailing slash", method: "GET", path: "/addon/",
			rawQuery: "lic=none&tz=Europe%2FMoscow&cp=%2Fjira&user_key=admin&loc=en-US&user_id=admin" +
				"&xdm_e=http%3A%2F%2Flocalhost%3A2990&xdm_c=channel-servlet-click-me&xdm_p=1&jwt=eyJ.eyJ.sig",
			canonical: "GET&/addon&cp=%2Fjira&lic=none&loc=en-US&tz=Europe%2FMoscow&user_id=admin&user_key=admin" +
				"&xdm_c=channel-servlet-click-me&xdm_e=http%3A%2F%2Flocalhost%3A2990&xdm_p=1",
			qsh: "3a6ff1b66f60eb275d0e4cb6be4261d5d3b0216b91c58dc6524509227ef346de"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr, err := CanonicalRequest(tt.method, tt.path, tt.rawQuery, tt.base)
			if err != nil {
				t.Fatalf("CanonicalRequest: %v", err)
			}
			if tt.canonical != "" && cr != tt.canonical {
				t.Errorf("canonical\n got %q\nwant %q", cr, tt.canonical)
			}
			q := mustQSH(t, tt.method, tt.path, tt.rawQuery, tt.base)
			if tt.qsh != "" && q != tt.qsh {
				t.Errorf("qsh = %s, want %s (canonical %q)", q, tt.qsh, cr)
			}
		})
	}
}

// TestV13SHA256 is the hash sanity vector.
func TestV13SHA256(t *testing.T) {
	if got, want := hashString("foo"), "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"; got != want {
		t.Fatalf("sha256(foo) = %s, want %s", got, want)
	}
}

// TestInstalledQSH pins the hash spec §3.3 quotes for the install callback.
func TestInstalledQSH(t *testing.T) {
	q := mustQSH(t, "POST", "/jira/installed", "", "/jira")
	if !strings.HasPrefix(q, "4a2e1de8") || !strings.HasSuffix(q, "f4") {
		t.Fatalf("qsh(POST&/installed&) = %s, want 4a2e1de8…f4", q)
	}
}

func TestCanonicalRequestRules(t *testing.T) {
	tests := []struct {
		name                         string
		method, path, rawQuery, base string
		want                         string
	}{
		{"method upper-cased", "get", "/p", "", "", "GET&/p&"},
		{"jwt removed, all values", "GET", "/p", "jwt=a&x=1&jwt=b", "", "GET&/p&x=1"},
		{"jwt removal is case-sensitive", "GET", "/p", "JWT=a&Jwt=b", "", "GET&/p&JWT=a&Jwt=b"},
		{"encoded jwt name removed", "GET", "/p", "%6Awt=a&x=1", "", "GET&/p&x=1"},
		{"only jwt gives empty query", "GET", "/p", "jwt=abc", "", "GET&/p&"},
		{"empty name dropped", "GET", "/p", "=v&a=1", "", "GET&/p&a=1"},
		{"empty pieces skipped", "GET", "/p", "&&a=1&&", "", "GET&/p&a=1"},
		{"value split at first =", "GET", "/p", "a=b=c", "", "GET&/p&a=b%3Dc"},
		{"base path stripped", "GET", "/jira/panel", "", "/jira", "GET&/panel&"},
		{"base path alone is root", "GET", "/jira", "", "/jira", "GET&/&"},
		{"base path with slash is root", "GET", "/jira/", "", "/jira", "GET&/&"},
		{"base path segment-aware", "GET", "/jiraX/panel", "", "/jira", "GET&/jiraX/panel&"},
		{"base path given with trailing slash", "GET", "/jira/panel", "", "/jira/", "GET&/panel&"},
		{"base path without leading slash", "GET", "/jira/panel", "", "jira", "GET&/panel&"},
		{"base path only at start", "GET", "/x/jira/panel", "", "/jira", "GET&/x/jira/panel&"},
		{"root base path strips nothing", "GET", "/panel", "", "/", "GET&/panel&"},
		{"confluence wiki strip", "GET", "/wiki/rest/api/content", "", "/wiki", "GET&/rest/api/content&"},
		{"one trailing slash removed", "GET", "/a/b/", "", "", "GET&/a/b&"},
		{"only one trailing slash removed", "GET", "/a//", "", "", "GET&/a/&"},
		{"missing leading slash added", "GET", "a/b", "", "", "GET&/a/b&"},
		{"decoded path kept verbatim", "GET", "/a b/é", "", "", "GET&/a b/é&"},
		{"percent in decoded path kept", "GET", "/a%2Fb", "", "", "GET&/a%2Fb&"},
		{"plus is space", "GET", "/p", "q=a+b", "", "GET&/p&q=a%20b"},
		{"encoded plus stays plus", "GET", "/p", "q=a%2Bb", "", "GET&/p&q=a%2Bb"},
		{"star encoded", "GET", "/p", "q=*", "", "GET&/p&q=%2A"},
		{"tilde kept", "GET", "/p", "q=%7E", "", "GET&/p&q=~"},
		{"unreserved kept", "GET", "/p", "q=Az09-._~", "", "GET&/p&q=Az09-._~"},
		{"sub-delims encoded", "GET", "/p", "q=!'()", "", "GET&/p&q=%21%27%28%29"},
		{"comma in value encoded", "GET", "/p", "q=a,b", "", "GET&/p&q=a%2Cb"},
		{"unicode utf-8 uppercase hex", "GET", "/p", "q=%C3%A9", "", "GET&/p&q=%C3%A9"},
		{"raw unicode in query", "GET", "/p", "q=é", "", "GET&/p&q=%C3%A9"},
		{"lowercase escapes normalised", "GET", "/p", "q=%2f", "", "GET&/p&q=%2F"},
		{"semicolon kept", "GET", "/p", "a=1;b=2&c=3", "", "GET&/p&a=1%3Bb%3D2&c=3"},
		{"bracket names literal", "GET", "/p", "a[b]=1&a[c]=2", "", "GET&/p&a%5Bb%5D=1&a%5Bc%5D=2"},
		{"repeated values sorted raw", "GET", "/p", "r=b&r=a&r=B", "", "GET&/p&r=B,a,b"},
		{"duplicate values kept", "GET", "/p", "r=a&r=a", "", "GET&/p&r=a,a"},
		// Raw, "." (0x2E) sorts before "/" (0x2F); encoded, "%2F" would come
		// first. The spec sorts raw values.
		{"values sorted by raw not encoded", "GET", "/p", "r=%2F&r=.", "", "GET&/p&r=.,%2F"},
		{"numeric strings sort as strings", "GET", "/p", "n=10&n=9&n=1", "", "GET&/p&n=1,10,9"},
		{"names sorted by encoded form", "GET", "/p", "z=1&%C3%A9=2&a=3", "", "GET&/p&%C3%A9=2&a=3&z=1"},
		{"empty value", "GET", "/p", "a=", "", "GET&/p&a="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalRequest(tt.method, tt.path, tt.rawQuery, tt.base)
			if err != nil {
				t.Fatalf("CanonicalRequest: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCanonicalRequestInvalidEscapes(t *testing.T) {
	for _, q := range []string{"a=%", "a=%2", "a=%zz", "%zz=1", "a=1&b=%G0", "jwt=%x"} {
		t.Run(q, func(t *testing.T) {
			if got, err := CanonicalRequest("GET", "/p", q, ""); err == nil {
				t.Fatalf("want error, got %q", got)
			}
			if _, err := QSH("GET", "/p", q, ""); err == nil {
				t.Fatal("QSH: want error")
			}
		})
	}
}

func TestEncodeRFC3986(t *testing.T) {
	tests := map[string]string{
		" ": "%20", "+": "%2B", "*": "%2A", "~": "~", ",": "%2C", "/": "%2F", "é": "%C3%A9",
		"a-b.c_d": "a-b.c_d", "&=": "%26%3D", "%": "%25", "😀": "%F0%9F%98%80",
	}
	for in, want := range tests {
		if got := encodeRFC3986(in); got != want {
			t.Errorf("encodeRFC3986(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzCanonicalRequest(f *testing.F) {
	f.Add("GET", "/path", "", "")
	f.Add("GET", "/hello-world", v3Query, "")
	f.Add("GET", "/path/to/service", v6Query, "")
	f.Add("POST", "/jira/rest/api/2/project/jira&a=b&c=d", "x=y", "/jira")
	f.Add("get", "/jiraX/a/", "a&b=foo&c&jwt=x", "/jira")
	f.Add("GET", "/a b/é", "q=%C3%A9&q=*&r=a,b;c", "/")
	f.Add("GET", "", "a=%zz", "wiki")
	f.Fuzz(func(t *testing.T, method, path, rawQuery, base string) {
		got, err := CanonicalRequest(method, path, rawQuery, base)
		again, err2 := CanonicalRequest(method, path, rawQuery, base)
		if got != again || (err == nil) != (err2 == nil) {
			t.Fatalf("not deterministic: %q/%v vs %q/%v", got, err, again, err2)
		}
		if err != nil {
			return
		}
		prefix := strings.ToUpper(method) + "&"
		if !strings.HasPrefix(got, prefix) {
			t.Fatalf("%q does not start with %q", got, prefix)
		}
		p, q, ok := strings.Cut(got[len(prefix):], "&")
		// Only one trailing slash is removed ("/a//" keeps "/a/"), so the
		// path is checked for its start and for the escaped '&' only.
		if !ok || !strings.HasPrefix(p, "/") {
			t.Fatalf("bad canonical path in %q", got)
		}
		// The canonical query never depends on parameter order, and the
		// token parameter never counts.
		pieces := strings.Split(rawQuery, "&")
		for i, j := 0, len(pieces)-1; i < j; i, j = i+1, j-1 {
			pieces[i], pieces[j] = pieces[j], pieces[i]
		}
		reversed, err := CanonicalRequest(method, path, strings.Join(pieces, "&")+"&jwt=x.y.z", base)
		if err != nil || reversed != got {
			t.Fatalf("reordered query changed result: %q vs %q (%v)", reversed, got, err)
		}
		if q != "" {
			for _, pair := range strings.Split(q, "&") {
				if !strings.Contains(pair, "=") {
					t.Fatalf("pair %q without = in %q", pair, got)
				}
			}
		}
	})
}
