package httpapi

import (
	"io/fs"
	"net/http"

	swaggerfiles "github.com/swaggo/files/v2"
)

// swaggerInitializer replaces Swagger UI's petstore default with this
// service's own spec, relative to /docs/ so it works behind a path prefix.
const swaggerInitializer = `window.onload = function() {
  window.ui = SwaggerUIBundle({
    url: "../openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  });
};
`

// docsHandler serves Swagger UI from files embedded in the binary, so /docs
// works without internet access.
func docsHandler() http.Handler {
	files := http.FileServerFS(swaggerfiles.FS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "swagger-initializer.js" {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			_, _ = w.Write([]byte(swaggerInitializer))
			return
		}
		if _, err := fs.Stat(swaggerfiles.FS, r.URL.Path); r.URL.Path != "" && err != nil {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}
