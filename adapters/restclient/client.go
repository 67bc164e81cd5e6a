package restclient

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/kchat/kchat/adapters/tracing"
)

// maxProblemBytes bounds how much of an error response is read for its
// problem detail.
const maxProblemBytes = 64 << 10

// newClient returns the generated client for one service; with tracing
// on, each call is a span whose context goes along in the traceparent
// header, so the service called continues the caller's trace.
func newClient(baseURL string, timeout time.Duration, tr *tracing.Provider) *Client {
	hc := &http.Client{Timeout: timeout}
	if tr.Enabled() {
		hc.Transport = otelhttp.NewTransport(http.DefaultTransport,
			otelhttp.WithTracerProvider(tr.TracerProvider()), otelhttp.WithPropagators(tr.Propagator()))
	}
	c, err := NewClient(baseURL, WithHTTPClient(hc))
	if err != nil {
		// Only client options can fail, and WithHTTPClient never does.
		panic("restclient: " + err.Error())
	}
	return c
}

// readProblem reads an RFC 9457 problem from an error response. A body that
// is not one (a proxy's HTML page, say) leaves only the status filled in.
func readProblem(res *http.Response) ErrorModel {
	var p ErrorModel
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxProblemBytes))
	if strings.Contains(res.Header.Get("Content-Type"), "json") {
		_ = json.Unmarshal(body, &p)
	}
	status := int64(res.StatusCode)
	p.Status = &status
	return p
}

// problemText renders a problem for an error message: status, title, detail.
func problemText(p ErrorModel) string {
	var b strings.Builder
	if p.Status != nil {
		fmt.Fprintf(&b, "%d", *p.Status)
	}
	for _, s := range []*string{p.Title, p.Detail} {
		if s != nil && *s != "" {
			if b.Len() > 0 {
				b.WriteString(": ")
			}
			b.WriteString(*s)
		}
	}
	return b.String()
}
