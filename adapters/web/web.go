// Package web serves the gateway's browser chat page (GET /; docs/design.md,
// "Gateway"): HTML, script and style sheet embedded in the binary, so the
// page needs no CDN, no build step and no internet access. The page talks to
// the gateway's /ws WebSocket on the same origin.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// ContentSecurityPolicy is sent with every file: the page loads nothing from any
// other origin, runs no inline script or style, and no other page may frame it
// (clickjacking); no plugin, no <base> to redirect its relative URLs, no form
// posting elsewhere.
const ContentSecurityPolicy = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

//go:embed static
var embedded embed.FS

// contentTypes is set explicitly so that the answer does not depend on the host's
// mime.types files (some map .js to application/javascript, or not at all).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// Handler serves the chat page at "/" and its assets next to it. Mount it at the
// root of the gateway's router (e.g. chi's "/*"), or behind http.StripPrefix: the
// page refers to its assets and to the WebSocket by relative paths.
func Handler() http.Handler {
	static, err := fs.Sub(embedded, "static")
	if err != nil {
		panic("web: embedded static files: " + err.Error()) // the directory is embedded at build time
	}
	etags := etagsOf(static)
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		// Requests from the page tell no one where they came from.
		h.Set("Referrer-Policy", "no-referrer")
		// frame-ancestors for browsers that predate it.
		h.Set("X-Frame-Options", "DENY")
		// Revalidate on every load (cheap: ETag → 304), so a new gateway version never
		// runs with an old script.
		h.Set("Cache-Control", "no-cache")
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "index.html"
		}
		if tag, ok := etags[name]; ok {
			h.Set("ETag", tag)
			if ct, ok := contentTypes[path.Ext(name)]; ok {
				h.Set("Content-Type", ct)
			}
		}
		files.ServeHTTP(w, r)
	})
}

// etagsOf returns a strong ETag per regular file, from its content.
func etagsOf(fsys fs.FS) map[string]string {
	tags := map[string]string{}
	_ = fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		tags[name] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	return tags
}
