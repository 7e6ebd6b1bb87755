package connect

import (
	"encoding/json"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of Connect tokens, inbound and outbound.
type Claims struct {
	jwt.RegisteredClaims
	// QSH is the query string hash, or ContextQSH for context tokens.
	QSH string `json:"qsh"`
	// Context is the product's "context" claim, kept raw because its shape
	// varies by product and era; AccountID reads the one field we need.
	Context json.RawMessage `json:"context,omitempty"`
}

// tokenContext is the part of the context claim Keyline uses.
type tokenContext struct {
	User struct {
		AccountID string `json:"accountId"`
	} `json:"user"`
}

// AccountID returns context.user.accountId when present, else sub, the same
// precedence as atlassian-connect-express. It is "" for tokens without a user.
func (c *Claims) AccountID() string {
	if len(c.Context) > 0 {
		var ctx tokenContext
		// A context that is not an object carries no user; fall back to sub.
		if err := json.Unmarshal(c.Context, &ctx); err == nil && ctx.User.AccountID != "" {
			return ctx.User.AccountID
		}
	}
	return c.Subject
}
