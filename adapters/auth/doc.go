// Package auth tells the gateway who is calling. With KCHAT_AUTH=none (for
// development) the client names its own user id; with KCHAT_AUTH=token it
// presents a bearer credential, either a static token from KCHAT_AUTH_TOKENS
// or an HS256 JWT signed with KCHAT_AUTH_JWT_SECRET whose sub is the user id.
// The credential travels in the Authorization header, or, because browsers
// cannot set headers on a WebSocket handshake, in the access_token query
// parameter. Every refusal is ErrUnauthorized with a short reason, which
// never repeats the credential.
package auth
