package connect

import "time"

// defaultLeeway is the clock skew tolerated on exp and iat (spec §4.3, §9.4).
const defaultLeeway = 30 * time.Second

// VerifierOption configures a Verifier.
type VerifierOption interface{ applyVerifier(*Verifier) }

// InstallOption configures an InstallVerifier.
type InstallOption interface{ applyInstall(*InstallVerifier) }

// ClientOption configures an outbound Client.
type ClientOption interface{ applyClient(*Client) }

// KeyFetcherOption configures a KeyFetcher.
type KeyFetcherOption interface{ applyKeyFetcher(*KeyFetcher) }

// CommonOption is accepted by every constructor of this package.
type CommonOption interface {
	VerifierOption
	InstallOption
	ClientOption
	KeyFetcherOption
}

// TokenOption is accepted by both token verifiers.
type TokenOption interface {
	VerifierOption
	InstallOption
}

type clockOption func() time.Time

func (o clockOption) applyVerifier(v *Verifier)            { v.now = o }
func (o clockOption) applyInstall(v *InstallVerifier)      { v.now = o }
func (o clockOption) applyClient(c *Client)                { c.now = o }
func (o clockOption) applyKeyFetcher(f *KeyFetcher)        { f.now = o }
func (o leewayOption) applyVerifier(v *Verifier)           { v.leeway = time.Duration(o) }
func (o leewayOption) applyInstall(v *InstallVerifier)     { v.leeway = time.Duration(o) }
func (o maxRetriesOption) applyClient(c *Client)           { c.maxRetries = int(o) }
func (o userAgentOption) applyClient(c *Client)            { c.userAgent = string(o) }
func (o maxRetryWaitOption) applyClient(c *Client)         { c.maxRetryWait = time.Duration(o) }
func (o fetchTimeoutOption) applyKeyFetcher(f *KeyFetcher) { f.timeout = time.Duration(o) }
func (o failureTTLOption) applyKeyFetcher(f *KeyFetcher)   { f.failureTTL = time.Duration(o) }

type (
	leewayOption       time.Duration
	maxRetriesOption   int
	userAgentOption    string
	maxRetryWaitOption time.Duration
	fetchTimeoutOption time.Duration
	failureTTLOption   time.Duration
)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) CommonOption { return clockOption(now) }

// WithLeeway sets the clock skew tolerated on exp and iat (default 30 s).
func WithLeeway(d time.Duration) TokenOption { return leewayOption(d) }

// WithMaxRetries bounds how often the Client retries an answer it may retry
// (429 and 503; 500, 502 and 504 of idempotent requests; see Client.Do):
// default 3, so at most 4 attempts. Negative values mean 0.
func WithMaxRetries(n int) ClientOption { return maxRetriesOption(n) }

// WithUserAgent sets the User-Agent of outbound calls; the app key is
// appended when the value does not already contain it.
func WithUserAgent(ua string) ClientOption { return userAgentOption(ua) }

// WithMaxRetryWait caps the wait before a retry, whatever Retry-After says
// (default 60 s).
func WithMaxRetryWait(d time.Duration) ClientOption { return maxRetryWaitOption(d) }

// WithFetchTimeout bounds one key download (default 5 s).
func WithFetchTimeout(d time.Duration) KeyFetcherOption { return fetchTimeoutOption(d) }

// WithFailureTTL sets how long a definite key-lookup failure (404, bad key)
// is remembered (default 2 s); it blunts floods of made-up key ids.
func WithFailureTTL(d time.Duration) KeyFetcherOption { return failureTTLOption(d) }
