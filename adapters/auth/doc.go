// Package auth tells the gateway who is calling, and from where
// (docs/security.md, "Gateway trust boundaries"). KCHAT_AUTH picks how:
//
//   - none: nobody is authenticated, but every visitor gets an identity of
//     its own, a random id in an HMAC-signed, HttpOnly cookie
//     (KCHAT_COOKIE_KEY), so visitors cannot open each other's sessions
//     and each has limits of its own;
//   - header: a trusted proxy in front authenticates and names the user in
//     X-User-ID, believed only from the addresses in KCHAT_TRUSTED_PROXIES;
//   - token: a bearer credential, a static token from KCHAT_AUTH_TOKENS or
//     an HS256 JWT signed with KCHAT_AUTH_JWT_SECRET whose sub is the user
//     id, in the Authorization header (or, on the WebSocket handshake
//     only, where browsers cannot set headers, the access_token query
//     parameter).
//
// Edge finds each request's client address (X-Forwarded-For only from a
// trusted proxy) for the limits per address (ClientLimiter). Every refusal
// is ErrUnauthorized with a short reason for the log, which never repeats
// the credential.
package auth
