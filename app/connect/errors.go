package connect

import "errors"

// ErrNoToken means the request carried no token in any accepted place.
// ExtractToken and Verify return it wrapped in an *AuthError.
var ErrNoToken = errors.New("no token in request")

// ErrTenantLookup marks a Verify failure caused by the tenant store rather than
// the caller (the database is down, say). The request is still not
// authenticated, but the web layer answers 503 so the product retries instead
// of showing the user an authentication error.
var ErrTenantLookup = errors.New("tenant lookup failed")

// AuthError is every reason to answer 401. Reason is a short sentence that is
// safe to show to the caller: it never contains the token or a secret. Err,
// when set, carries the detail for logs and for errors.Is/As.
type AuthError struct {
	Reason string
	Err    error
}

// Error returns the reason followed by the wrapped detail, if any.
func (e *AuthError) Error() string {
	if e.Err == nil {
		return "unauthorized: " + e.Reason
	}
	return "unauthorized: " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the wrapped detail.
func (e *AuthError) Unwrap() error { return e.Err }

func authErr(reason string, err error) *AuthError {
	return &AuthError{Reason: reason, Err: err}
}

// KeyServerError means the install-key server could not be asked (network
// error, timeout, 5xx, rate limit). VerifyInstall still returns an *AuthError,
// but wraps this one, so the web layer can find it with errors.As and answer
// 503 instead of 401: the product then reports a transient failure rather
// than a rejected install. A key the server says does not exist (404) is
// ErrKeyNotFound and is not a KeyServerError.
type KeyServerError struct {
	Err error
}

// Error describes the failure.
func (e *KeyServerError) Error() string { return "install key server unavailable: " + e.Err.Error() }

// Unwrap returns the underlying transport or status error.
func (e *KeyServerError) Unwrap() error { return e.Err }
