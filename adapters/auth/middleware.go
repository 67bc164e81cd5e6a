package auth

import (
	"context"
	"net/http"
)

// reply is what Edge keeps of a response for Authenticate: where to put a
// new visitor's cookie, and the visitor once known (a request has one).
type reply struct {
	header  http.Header
	visitor string
}

type replyKey struct{}

// Edge is the gateway's outermost middleware. It finds the client of every
// request (ClientOf: its address and scheme, through trusted proxies) and
// puts it in the request's context, where ClientLimiter finds it; and it
// keeps the response's header within reach of Authenticate, which sets a
// new visitor's cookie there (KCHAT_AUTH=none). It refuses nothing: each
// route authenticates, or is public.
func (a *Authenticator) Edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := WithClient(r.Context(), a.resolve(r))
		if a.visitors != nil {
			ctx = context.WithValue(ctx, replyKey{}, &reply{header: w.Header()})
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Visitors gives every visitor of next an identity (KCHAT_AUTH=none): the
// page sets the cookie before its script opens the WebSocket. In the other
// modes next is served as it is: the page itself is public.
func (a *Authenticator) Visitors(next http.Handler) http.Handler {
	if a.visitors == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.visitor(r)
		next.ServeHTTP(w, r)
	})
}

// visitor is the visitor of r (ModeNone): the one its cookie proves, or a
// new one whose cookie goes on the response (when r passed through Edge;
// otherwise the new identity lasts for this request only).
func (a *Authenticator) visitor(r *http.Request) string {
	rep, _ := r.Context().Value(replyKey{}).(*reply)
	if rep != nil && rep.visitor != "" {
		return rep.visitor
	}
	id := a.visitors.fromRequest(r)
	if id == "" {
		id = newVisitorID()
		if rep != nil {
			rep.header.Add("Set-Cookie", a.visitors.cookie(id, a.ClientOf(r).Secure))
		}
	}
	if rep != nil {
		rep.visitor = id
	}
	return id
}
