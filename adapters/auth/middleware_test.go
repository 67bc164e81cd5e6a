package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kchat/kchat/adapters/auth"
)

func TestWithUser(t *testing.T) {
	if user, ok := auth.UserFrom(context.Background()); ok || user != "" {
		t.Fatalf("UserFrom(empty) = %q, %v", user, ok)
	}
	if user, ok := auth.UserFrom(auth.WithUser(context.Background(), "alice")); !ok || user != "alice" {
		t.Fatalf("UserFrom(WithUser(alice)) = %q, %v", user, ok)
	}
	if _, ok := auth.UserFrom(auth.WithUser(context.Background(), "")); ok {
		t.Fatal("UserFrom reports an empty user as present")
	}
}

func TestMiddleware(t *testing.T) {
	a := newAuthenticator(t, auth.Config{Mode: auth.ModeToken, Tokens: []string{"t-alice:alice"}})
	tests := []struct {
		name      string
		give      string // target
		header    string // Authorization
		wantUser  string // "" when the request must fail
		wantQuery string // the query next sees
	}{
		{"header", "/ws?session_id=s1", "Bearer t-alice", "alice", "session_id=s1"},
		{"query token removed", "/ws?access_token=t-alice&session_id=s1", "", "alice", "session_id=s1"},
		{"wrong token", "/ws", "Bearer t-bob", "", ""},
		{"missing token", "/ws?session_id=s1", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				nextCalled bool
				gotUser    string
				gotQuery   string
				failErr    error
			)
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				nextCalled = true
				gotUser, _ = auth.UserFrom(r.Context())
				gotQuery = r.URL.RawQuery
				w.WriteHeader(http.StatusNoContent)
			})
			onFail := func(w http.ResponseWriter, _ *http.Request, err error) {
				failErr = err
				w.WriteHeader(http.StatusTeapot)
			}
			r := httptest.NewRequest(http.MethodGet, tt.give, nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			auth.Middleware(a, onFail)(next).ServeHTTP(w, r)

			if tt.wantUser == "" {
				if nextCalled {
					t.Fatal("next handler called for an unauthenticated request")
				}
				if !errors.Is(failErr, auth.ErrUnauthorized) || w.Code != http.StatusTeapot {
					t.Fatalf("onFail got %v, status %d; want ErrUnauthorized, 418", failErr, w.Code)
				}
				return
			}
			if failErr != nil || !nextCalled || w.Code != http.StatusNoContent {
				t.Fatalf("onFail %v, next called %v, status %d", failErr, nextCalled, w.Code)
			}
			if gotUser != tt.wantUser || gotQuery != tt.wantQuery {
				t.Fatalf("next saw user %q query %q; want %q %q", gotUser, gotQuery, tt.wantUser, tt.wantQuery)
			}
			if want := httptest.NewRequest(http.MethodGet, tt.give, nil).URL.RawQuery; r.URL.RawQuery != want {
				t.Fatalf("caller's request query changed to %q, want %q", r.URL.RawQuery, want)
			}
		})
	}
}

func TestMiddlewareDefaultOnFail(t *testing.T) {
	a := newAuthenticator(t, auth.Config{Mode: auth.ModeToken, Tokens: []string{"t-alice:alice"}})
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("next handler called for an unauthenticated request")
	})
	w := httptest.NewRecorder()
	auth.Middleware(a, nil)(next).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ws?access_token=nope", nil))
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("status %d, WWW-Authenticate %q; want 401, Bearer", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestMiddlewareNoneMode(t *testing.T) {
	a := newAuthenticator(t, auth.DefaultConfig())
	var got string
	next := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got, _ = auth.UserFrom(r.Context()) })
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	r.Header.Set("X-User-ID", "alice")
	auth.Middleware(a, nil)(next).ServeHTTP(httptest.NewRecorder(), r)
	if got != "alice" {
		t.Fatalf("next saw user %q, want alice", got)
	}
}
