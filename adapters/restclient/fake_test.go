package restclient_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/restclient"
)

// received is one request a fake service got.
type received struct {
	Method      string
	Path        string
	Query       url.Values
	ContentType string
	Body        []byte
}

// fakeService stands in for the producer or the consumer: it records every
// request and answers with status, header and body.
type fakeService struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newFakeService(t *testing.T, status int, header http.Header, body string) *fakeService {
	t.Helper()
	f := &fakeService{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, received{r.Method, r.URL.Path, r.URL.Query(), r.Header.Get("Content-Type"), b})
		f.mu.Unlock()
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

// only returns the one request the service got, failing otherwise.
func (f *fakeService) only(t *testing.T) received {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) != 1 {
		t.Fatalf("the service got %d requests, want 1: %+v", len(f.reqs), f.reqs)
	}
	return f.reqs[0]
}

func (f *fakeService) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// deadURL is the address of a service that is not listening any more.
func deadURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

// hangingURL is a service that never answers (until the test ends).
func hangingURL(t *testing.T) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv.URL
}

func config(producerURL, consumerURL string) restclient.Config {
	cfg := restclient.DefaultConfig()
	cfg.ProducerURL = producerURL
	cfg.ConsumerURL = consumerURL
	cfg.Timeout = 2 * time.Second
	return cfg
}

var (
	jsonHeader    = http.Header{"Content-Type": {"application/json"}}
	problemHeader = http.Header{"Content-Type": {"application/problem+json"}}
)
