package restclient

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// retryAfter is what a 503 tells clients to wait before retrying, in
// seconds (the producer and consumer say the same).
const retryAfter = 2

// problemJSON is an RFC 9457 problem in huma's shape, so that the gateway's
// own errors read like the ones it relays.
type problemJSON struct {
	Type   string          `json:"type"`
	Title  string          `json:"title"`
	Status int             `json:"status"`
	Detail string          `json:"detail,omitempty"`
	Errors []problemDetail `json:"errors,omitempty"`
}

type problemDetail struct {
	Location string `json:"location"`
	Message  string `json:"message"`
}

func writeProblem(w http.ResponseWriter, status int, detail string, errs ...problemDetail) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problemJSON{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Errors: errs,
	})
}
