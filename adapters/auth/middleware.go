package auth

import (
	"context"
	"net/http"
)

type userKey struct{}

// WithUser returns a copy of ctx that carries user.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// UserFrom returns the user ctx carries, and false if it carries none.
func UserFrom(ctx context.Context) (string, bool) {
	user, ok := ctx.Value(userKey{}).(string)
	return user, ok && user != ""
}

// Middleware authenticates every request before next sees it and stores the
// user in its context (read it with UserFrom). A request that fails goes to
// onFail instead, with the ErrUnauthorized error, and never to next; a nil
// onFail answers 401 with "WWW-Authenticate: Bearer". The access_token
// query parameter is removed from the URL next sees, so that handlers and
// loggers inside do not pass the credential on.
func Middleware(a *Authenticator, onFail func(w http.ResponseWriter, r *http.Request, err error)) func(http.Handler) http.Handler {
	if onFail == nil {
		onFail = unauthorizedResponse
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, err := a.Authenticate(r)
			if err != nil {
				onFail(w, r, err)
				return
			}
			r = r.WithContext(WithUser(r.Context(), user))
			if q := r.URL.Query(); q.Has(accessTokenParam) {
				q.Del(accessTokenParam)
				u := *r.URL // WithContext shares the URL with the caller's request
				u.RawQuery = q.Encode()
				r.URL = &u
				r.RequestURI = u.RequestURI()
			}
			next.ServeHTTP(w, r)
		})
	}
}

func unauthorizedResponse(w http.ResponseWriter, _ *http.Request, _ error) {
	w.Header().Set("WWW-Authenticate", "Bearer")
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}
