package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

// get serves one request; the recorder's Result is not used, so there is no body
// to close.
func get(t *testing.T, h http.Handler, method, target string, header http.Header) (*httptest.ResponseRecorder, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec, rec.Body.String()
}

func TestHandlerServesFiles(t *testing.T) {
	h := Handler()
	tests := []struct {
		give     string
		wantType string
		wantBody string
	}{
		{give: "/", wantType: "text/html; charset=utf-8", wantBody: `<textarea id="question"`},
		{give: "/app.js", wantType: "text/javascript; charset=utf-8", wantBody: `new WebSocket(`},
		{give: "/style.css", wantType: "text/css; charset=utf-8", wantBody: `.answer`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			res, body := get(t, h, http.MethodGet, tt.give, nil)
			if res.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", res.Code)
			}
			if got := res.Header().Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if got := res.Header().Get("Content-Security-Policy"); got != ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy = %q, want %q", got, ContentSecurityPolicy)
			}
			if got := res.Header().Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
				if got := res.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body does not contain %q", tt.wantBody)
			}
		})
	}
}

func TestContentSecurityPolicyIsStrict(t *testing.T) {
	want := "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
	if ContentSecurityPolicy != want {
		t.Fatalf("ContentSecurityPolicy = %q, want %q", ContentSecurityPolicy, want)
	}
	for _, loose := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:"} {
		if strings.Contains(ContentSecurityPolicy, loose) {
			t.Errorf("policy allows %q", loose)
		}
	}
}

func TestHandlerRevalidatesWithETag(t *testing.T) {
	h := Handler()
	res, _ := get(t, h, http.MethodGet, "/app.js", nil)
	tag := res.Header().Get("ETag")
	if tag == "" {
		t.Fatal("no ETag on /app.js")
	}
	res, body := get(t, h, http.MethodGet, "/app.js", http.Header{"If-None-Match": {tag}})
	if res.Code != http.StatusNotModified || body != "" {
		t.Fatalf("revalidation: status %d, %d bytes; want 304, empty", res.Code, len(body))
	}
}

func TestHandlerRejectsOtherMethodsAndUnknownFiles(t *testing.T) {
	h := Handler()
	res, _ := get(t, h, http.MethodPost, "/", nil)
	if res.Code != http.StatusMethodNotAllowed || res.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d (Allow %q), want 405 with Allow: GET, HEAD", res.Code, res.Header().Get("Allow"))
	}
	res, _ = get(t, h, http.MethodGet, "/missing.js", nil)
	if res.Code != http.StatusNotFound {
		t.Errorf("GET /missing.js = %d, want 404", res.Code)
	}
	res, body := get(t, h, http.MethodHead, "/", nil)
	if res.Code != http.StatusOK || body != "" {
		t.Errorf("HEAD / = %d with %d bytes, want 200 and no body", res.Code, len(body))
	}
}

func staticFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := fs.WalkDir(embedded, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(embedded, name)
		files[strings.TrimPrefix(name, "static/")] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"index.html", "app.js", "style.css"} {
		if _, ok := files[want]; !ok {
			t.Fatalf("static/%s is not embedded", want)
		}
	}
	return files
}

// The page must work offline and under the CSP: no file may point anywhere else.
func TestStaticFilesHaveNoExternalURLs(t *testing.T) {
	external := regexp.MustCompile(`(?i)https?://|["'(=]\s*//[a-z0-9]`) // absolute or protocol-relative
	cssLoads := regexp.MustCompile(`(?i)@import|url\(`)
	for name, text := range staticFiles(t) {
		if m := external.FindString(text); m != "" {
			t.Errorf("static/%s contains %q: the page must load nothing from elsewhere", name, m)
		}
		if path.Ext(name) == ".css" {
			if m := cssLoads.FindString(text); m != "" {
				t.Errorf("static/%s loads a resource with %q", name, m)
			}
		}
	}
}

// Message text reaches the page only as text nodes (XSS), and no inline style or
// script would be refused by the CSP.
func TestStaticFilesAvoidHTMLInjectionAndInlineCode(t *testing.T) {
	files := staticFiles(t)
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(files["app.js"], bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	index := files["index.html"]
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]`), // inline script body
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\sstyle=`),
		regexp.MustCompile(`(?i)\son[a-z]+=`), // inline event handler
	} {
		if m := bad.FindString(index); m != "" {
			t.Errorf("index.html has inline code the CSP refuses: %q", m)
		}
	}
}

// index.html refers to its assets by relative paths (works behind a path prefix),
// and each of them is embedded.
func TestIndexReferencesOnlyRelativeEmbeddedAssets(t *testing.T) {
	files := staticFiles(t)
	refs := regexp.MustCompile(`(?i)\s(?:src|href)="([^"]*)"`).FindAllStringSubmatch(files["index.html"], -1)
	if len(refs) == 0 {
		t.Fatal("index.html references no assets")
	}
	seen := map[string]bool{}
	for _, m := range refs {
		ref := m[1]
		switch {
		case strings.HasPrefix(ref, "data:image/png;base64,"): // the favicon, inline
		case ref == "" || strings.Contains(ref, ":") || strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "."):
			t.Errorf("index.html refers to %q; want a relative path such as app.js", ref)
		default:
			if _, ok := files[path.Clean(ref)]; !ok {
				t.Errorf("index.html refers to %q, which is not embedded", ref)
			}
			seen[ref] = true
		}
	}
	for _, want := range []string{"app.js", "style.css"} {
		if !seen[want] {
			t.Errorf("index.html does not load %s", want)
		}
	}
}

// The ids and classes browser tests rely on.
func TestPageHasStableHooks(t *testing.T) {
	files := staticFiles(t)
	for _, id := range []string{"question", "send", "messages", "status", "new-session", "token"} {
		if !strings.Contains(files["index.html"], `id="`+id+`"`) {
			t.Errorf("index.html has no #%s", id)
		}
	}
	for _, class := range []string{`"answer"`, `"answer-text"`, `"citations"`, `"question-text"`, `"state"`, `"error"`} {
		if !strings.Contains(files["app.js"], class) {
			t.Errorf("app.js never creates class %s", class)
		}
	}
}
