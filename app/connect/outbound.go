package connect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/tenant"
)

const (
	// outboundTokenLifetime matches what the products and ACE use (spec §5.1).
	outboundTokenLifetime = 180 * time.Second
	defaultMaxRetries     = 3
	defaultMaxRetryWait   = 60 * time.Second
	// defaultBackoff is the first wait when a retried answer has no
	// Retry-After.
	defaultBackoff = time.Second
	// maxDrain bounds how much of a discarded response is read so the
	// connection can be reused.
	maxDrain = 64 << 10
)

// ErrRetriesExhausted means the product kept answering with a status Do
// retries (see Do) until the retries were spent.
var ErrRetriesExhausted = errors.New("product still failing after retries")

// Client signs requests from the app to one tenant's product (spec §5.1):
// Authorization: JWT with iss = app key, a 180 s lifetime and the qsh of the
// exact request. It refuses any URL outside the tenant's baseUrl, so a
// tenant's secret can never be sent to another host. Safe for concurrent use.
type Client struct {
	appKey       string
	secret       []byte
	httpClient   *http.Client
	base         *url.URL
	baseErr      error
	basePath     string
	maxRetries   int
	maxRetryWait time.Duration
	userAgent    string
	now          func() time.Time
	// sleep waits before a retry; tests replace it to observe the waits.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewClient returns a client for tenant t. A nil httpClient means
// http.DefaultClient. A baseUrl that cannot be parsed makes every call fail.
func NewClient(appKey string, t *tenant.Tenant, httpClient *http.Client, opts ...ClientOption) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	c := &Client{
		appKey:       appKey,
		secret:       t.SharedSecret,
		httpClient:   httpClient,
		maxRetries:   defaultMaxRetries,
		maxRetryWait: defaultMaxRetryWait,
		now:          time.Now,
		sleep:        sleepContext,
	}
	c.base, c.baseErr = parseBaseURL(t.BaseURL)
	if c.baseErr == nil {
		c.basePath = normaliseBasePath(c.base.Path)
	}
	for _, o := range opts {
		o.applyClient(c)
	}
	c.maxRetries = max(c.maxRetries, 0)
	if c.userAgent == "" {
		c.userAgent = "keyline"
	}
	if !strings.Contains(c.userAgent, appKey) {
		c.userAgent += " (" + appKey + ")"
	}
	return c
}

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse tenant baseUrl: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("tenant baseUrl %q is not a plain http(s) URL", raw)
	}
	return u, nil
}

// Get sends a signed GET for pathAndQuery (e.g. "/rest/api/3/search?jql=…")
// relative to the tenant baseUrl.
func (c *Client) Get(ctx context.Context, pathAndQuery string) (*http.Response, error) {
	req, err := c.newRequest(ctx, http.MethodGet, pathAndQuery, nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

// PostJSON sends v as JSON in a signed POST to path relative to the tenant
// baseUrl.
func (c *Client) PostJSON(ctx context.Context, path string, v any) (*http.Response, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode body for %s: %w", path, err)
	}
	req, err := c.newRequest(ctx, http.MethodPost, path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.Do(req)
}

func (c *Client) newRequest(ctx context.Context, method, pathAndQuery string, body io.Reader) (*http.Request, error) {
	if c.baseErr != nil {
		return nil, c.baseErr
	}
	// Requiring a leading "/" keeps the concatenation below from turning
	// "@evil.example" or "//evil.example" into a new host.
	if !strings.HasPrefix(pathAndQuery, "/") || strings.HasPrefix(pathAndQuery, "//") {
		return nil, fmt.Errorf("product request path %q must start with a single /", pathAndQuery)
	}
	target := strings.TrimSuffix(c.base.String(), "/") + pathAndQuery
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("build product request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// Do signs and sends req, which must target the tenant's product. It
// retries an answer that says the request may be sent again: it waits as
// Retry-After says (seconds or HTTP date, capped by WithMaxRetryWait) or
// backs off exponentially (1 s, 2 s, 4 s, …), then re-signs and resends, at
// most WithMaxRetries times; when that is spent it returns an error wrapping
// ErrRetriesExhausted. So one call makes at most WithMaxRetries+1 requests,
// and N callers at most N times that, however the product fails.
//
// What is retried:
//   - 429 and 503, for every method: the product says it did not process
//     the request and when to come back.
//   - 500, 502 and 504, for idempotent methods only (GET, HEAD, OPTIONS,
//     PUT, DELETE): the request may have been carried out before the error,
//     and sending a POST again could do it twice. A POST's 5xx is returned
//     as it is, for the caller to judge.
//
// Other statuses, and transport errors, are returned at once: a timeout
// says the product is slow, and resending would add to its load. A request
// body is replayed through GetBody; without GetBody the first answer is
// returned as is. The caller closes the returned body.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	qsh, err := c.check(req)
	if err != nil {
		return nil, fmt.Errorf("refuse %s request: %w", req.Method, err)
	}
	replayable := !hasBody(req) || req.GetBody != nil
	for attempt := 0; ; attempt++ {
		out, err := c.prepare(req, qsh, attempt)
		if err != nil {
			return nil, err
		}
		resp, err := c.httpClient.Do(out)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
		}
		if !retryable(req.Method, resp.StatusCode) || !replayable {
			return resp, nil
		}
		if attempt >= c.maxRetries {
			drainClose(resp)
			return nil, fmt.Errorf("%s %s: %w (status %d after %d attempts)",
				req.Method, req.URL.Path, ErrRetriesExhausted, resp.StatusCode, attempt+1)
		}
		wait := c.retryDelay(resp.Header.Get("Retry-After"), attempt)
		drainClose(resp)
		if err := c.sleep(req.Context(), wait); err != nil {
			return nil, fmt.Errorf("%s %s: wait before retry: %w", req.Method, req.URL.Path, err)
		}
	}
}

// retryable reports whether an answer of status to a request of method may
// be retried; see Do.
func retryable(method string, status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
			return true
		}
	}
	return false
}

// check enforces the request rules of spec §5.1 and returns the qsh.
func (c *Client) check(req *http.Request) (string, error) {
	if c.baseErr != nil {
		return "", c.baseErr
	}
	if len(c.secret) == 0 {
		return "", errors.New("tenant has no shared secret")
	}
	u := req.URL
	if u == nil || u.Opaque != "" || u.User != nil {
		return "", errors.New("URL is not a plain product URL")
	}
	if !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(u.Host, c.base.Host) {
		return "", fmt.Errorf("host %q is not the tenant's %q", u.Host, c.base.Host)
	}
	if c.basePath != "" && u.Path != c.basePath && !strings.HasPrefix(u.Path, c.basePath+"/") {
		return "", fmt.Errorf("path %q is outside the tenant base path %q", u.Path, c.basePath)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return "", fmt.Errorf("path %q has dot segments", u.Path)
		}
	}
	if (req.Method == http.MethodGet || req.Method == http.MethodHead) && hasBody(req) {
		return "", errors.New("GET and HEAD must not carry a body")
	}
	_, hasToken, err := queryToken(u.RawQuery)
	if err != nil {
		return "", fmt.Errorf("query: %w", err)
	}
	if hasToken {
		return "", errors.New("the product no longer accepts ?jwt=")
	}
	qsh, err := QSH(req.Method, u.Path, u.RawQuery, c.basePath)
	if err != nil {
		return "", err
	}
	return qsh, nil
}

// prepare clones req for one attempt with a fresh token and a rewound body.
func (c *Client) prepare(req *http.Request, qsh string, attempt int) (*http.Request, error) {
	out := req.Clone(req.Context())
	if attempt > 0 && hasBody(req) {
		body, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("rewind body for retry: %w", err)
		}
		out.Body = body
	}
	now := c.now()
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.appKey,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(outboundTokenLifetime)),
		},
		QSH: qsh,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.secret)
	if err != nil {
		return nil, fmt.Errorf("sign product request: %w", err)
	}
	out.Header.Set("Authorization", authPrefix+tok)
	out.Header.Set("User-Agent", c.userAgent)
	return out, nil
}

// retryDelay reads Retry-After (delay-seconds or HTTP-date) and caps it;
// without a usable value it backs off 1 s, 2 s, 4 s, ….
func (c *Client) retryDelay(retryAfter string, attempt int) time.Duration {
	d := defaultBackoff << min(attempt, 16)
	if v := strings.TrimSpace(retryAfter); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
			d = time.Duration(min(secs, int64(c.maxRetryWait/time.Second)+1)) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = max(t.Sub(c.now()), 0)
		}
	}
	return min(d, c.maxRetryWait)
}

func hasBody(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody
}

func drainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
