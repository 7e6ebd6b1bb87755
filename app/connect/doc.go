// Package connect implements the Atlassian Connect protocol pieces Keyline
// needs: the query string hash (qsh), token extraction, verification of
// product-issued HS256 tokens and of RS256-signed install callbacks, the
// lifecycle payload, and a client that signs outbound calls to a tenant's
// product.
//
// The package deliberately knows nothing about echo, gorm or the store: it
// talks to storage only through TenantLookup, so it can be tested with plain
// net/http and in-memory fakes.
package connect
