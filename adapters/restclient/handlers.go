package restclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

const (
	// maxFormBytes bounds a POST /send body: room for a 32 KiB message
	// percent-encoded (up to three bytes each) and the other fields.
	maxFormBytes = 256 << 10
	// maxFormMemory is what ParseMultipartForm keeps in memory; the body
	// limit above means nothing ever spills to disk.
	maxFormMemory = maxFormBytes
)

// sendRequired are the form fields POST /send must carry; message_id and
// type are optional, as on the producer's /send_message (type defaults to
// query there). The seed's user_id is accepted and ignored: the user is
// the caller.
var sendRequired = []string{"session_id", "message"}

// maxConsumerBytes bounds a consumer answer the gateway filters: 500
// messages of 32 KiB, base64 and JSON overheads included.
const maxConsumerBytes = 64 << 20

// Seed serves the seed's gateway routes, POST /send and GET /messages,
// through the generated client (docs/security.md, "Gateway trust
// boundaries"). Both authenticate their caller like every gateway route.
type Seed struct {
	Config Config
	// Authenticate returns the caller's user id, or an error (401).
	Authenticate func(*http.Request) (string, error)
	// Limiter counts the questions of /send against the caller's limits,
	// as every other entry point does; nil: no limit.
	Limiter ports.Limiter
	// MayAsk checks the caller may ask in a session, as the chat routes do
	// (the wiring passes the chat use case's check): nil, or
	// domain.ErrForbidden for another user's session, a
	// *domain.ValidationError for a malformed id, domain.ErrUnavailable.
	// nil: no check.
	MayAsk func(ctx context.Context, user, session string) error
	// OwnRecordsOnly keeps callers apart on GET /messages, for the modes
	// that tell them apart (KCHAT_AUTH=token, header): the consuming forms
	// are refused, since they would take other users' messages from the
	// shared group, and browsing returns only the caller's records.
	OwnRecordsOnly bool
	// Log gets the reasons of refusals, which clients are not told.
	Log *slog.Logger
	// Asked counts the questions /send forwarded (nil: not counted).
	Asked prometheus.Counter
}

// caller authenticates r; false means a 401 was written.
func (s Seed) caller(w http.ResponseWriter, r *http.Request) (string, bool) {
	user, err := s.Authenticate(r)
	if err != nil {
		s.Log.Info("request refused: no valid credential", "err", err, "path", r.URL.Path)
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeProblem(w, http.StatusUnauthorized, "missing or invalid credentials")
		return "", false
	}
	return user, true
}

// Send serves the seed's POST /send: form fields session_id, message_id,
// type and message (urlencoded or multipart), forwarded to the producer's
// POST /send_message as a question of the caller. The producer's 200 is
// answered as the seed's input_api did, 200 {status:"Message forwarded",
// producer_response: <the producer's JSON>}; its errors (problem+json) are
// relayed with their status; the handler's own errors are problem+json: 401 without a valid
// credential, 422 for missing fields or a type other than query (only the
// answerer writes prompts and answers), 429 over the caller's limits, 413,
// 415, 400 for a body that is no form, and 503 when the producer does not
// answer within Config.Timeout.
func (s Seed) Send() http.Handler {
	producer := newClient(s.Config.ProducerURL, s.Config.Timeout, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeProblem(w, http.StatusMethodNotAllowed, "use POST with form fields")
			return
		}
		user, ok := s.caller(w, r)
		if !ok {
			return
		}
		if status, detail := parseForm(w, r); status != 0 {
			writeProblem(w, status, detail)
			return
		}
		var missing []problemDetail
		var names []string
		for _, name := range sendRequired {
			if r.PostForm.Get(name) == "" {
				missing = append(missing, problemDetail{Location: "body." + name, Message: "required form field is missing or empty"})
				names = append(names, name)
			}
		}
		if len(missing) > 0 {
			writeProblem(w, http.StatusUnprocessableEntity, "missing form fields: "+strings.Join(names, ", "), missing...)
			return
		}
		if t := r.PostForm.Get("type"); t != "" && t != string(domain.TypeQuery) {
			writeProblem(w, http.StatusUnprocessableEntity, "the gateway publishes questions only: type must be query",
				problemDetail{Location: "body.type", Message: "must be query; prompts and answers are the answerer's"})
			return
		}
		if !s.allow(w, r, user) || !s.mayAsk(w, r, user, r.PostForm.Get("session_id")) {
			return
		}
		typ := string(domain.TypeQuery)
		body := SendMessageInput{
			SessionId: r.PostForm.Get("session_id"),
			UserId:    user,
			Message:   r.PostForm.Get("message"),
			Type:      &typ,
		}
		if id := r.PostForm.Get("message_id"); id != "" {
			body.MessageId = &id
		}
		res, err := producer.SendMessage(r.Context(), body)
		if err != nil {
			writeProblem(w, http.StatusServiceUnavailable, "the producer service did not answer; retry later")
			return
		}
		defer func() { _ = res.Body.Close() }()
		if res.StatusCode != http.StatusOK {
			relay(w, res)
			return
		}
		if s.Asked != nil {
			s.Asked.Inc()
		}
		forwarded(w, res)
	})
}

// forwarded answers a POST /send the producer took as the seed's
// input_api did: its JSON inside {status:"Message forwarded",
// producer_response}.
func forwarded(w http.ResponseWriter, res *http.Response) {
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxFormBytes))
	if err != nil || !json.Valid(raw) {
		writeProblem(w, http.StatusServiceUnavailable, "the producer service gave an answer that could not be read; the message may have been queued")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(struct {
		Status           string          `json:"status"`
		ProducerResponse json.RawMessage `json:"producer_response"`
	}{"Message forwarded", raw})
}

// mayAsk checks user may ask in session; false means a problem was
// written.
func (s Seed) mayAsk(w http.ResponseWriter, r *http.Request, user, session string) bool {
	if s.MayAsk == nil {
		return true
	}
	err := s.MayAsk(r.Context(), user, session)
	var verr *domain.ValidationError
	switch {
	case err == nil:
		return true
	case errors.As(err, &verr):
		writeProblem(w, http.StatusUnprocessableEntity, "validation failed: "+verr.Error(), problemDetail{Location: "body." + verr.Field, Message: verr.Reason})
	case errors.Is(err, domain.ErrForbidden):
		writeProblem(w, http.StatusForbidden, "the session belongs to another user")
	default:
		writeProblem(w, http.StatusServiceUnavailable, "sessions unavailable; retry later")
	}
	return false
}

// allow counts a question of user against the limits; false means a 429
// or 503 was written.
func (s Seed) allow(w http.ResponseWriter, r *http.Request, user string) bool {
	if s.Limiter == nil {
		return true
	}
	ok, err := s.Limiter.Allow(r.Context(), user)
	switch {
	case err != nil:
		writeProblem(w, http.StatusServiceUnavailable, "the rate limiter did not answer; retry later")
		return false
	case !ok:
		w.Header().Set("Retry-After", "1")
		writeProblem(w, http.StatusTooManyRequests, "too many questions; slow down")
		return false
	}
	return true
}

// parseForm reads the form body of r; a non-zero status says why it could
// not.
func parseForm(w http.ResponseWriter, r *http.Request) (status int, detail string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	var err error
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mediaType {
	case "multipart/form-data":
		err = r.ParseMultipartForm(maxFormMemory)
	case "application/x-www-form-urlencoded", "":
		// No content type: an empty form, reported as missing fields.
		err = r.ParseForm()
	default:
		return http.StatusUnsupportedMediaType, "send application/x-www-form-urlencoded or multipart/form-data, not " + mediaType
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, "the form is larger than " + strconv.Itoa(maxFormBytes) + " bytes"
	case err != nil:
		return http.StatusBadRequest, "the body is not a valid form"
	}
	return 0, ""
}

// Messages serves the seed's GET /messages?type=&limit=&latest= as its
// input_api did: it asks the consumer's GET /messages?topic=<type>&limit=
// &latest= (topic= is taken too), the seed's form, so latest=true takes the
// next one message and latest=false (the default) browses from the
// beginning, in the seed's record shape. The consumer's status and body
// come back unchanged, but with OwnRecordsOnly, where latest=true is
// refused (403) and a browse answers with the caller's records only.
// Other query parameters are not forwarded. 401 without a valid
// credential; a limit that is no number or a latest that is no boolean
// (true/false, 1/0, yes/no, on/off) gets 422, and a consumer that does not
// answer within Config.Timeout 503, all problem+json.
func (s Seed) Messages() http.Handler {
	consumer := newClient(s.Config.ConsumerURL, s.Config.Timeout, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeProblem(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		user, ok := s.caller(w, r)
		if !ok {
			return
		}
		params, latest, perr := messagesParams(r)
		if perr != nil {
			writeProblem(w, http.StatusUnprocessableEntity, "invalid query parameter "+strings.TrimPrefix(perr.Location, "query."), *perr)
			return
		}
		if s.OwnRecordsOnly && latest {
			writeProblem(w, http.StatusForbidden, "the gateway only browses (latest=false): a consuming read (latest=true) would take other users' messages from the shared group")
			return
		}
		res, err := consumer.GetMessages(r.Context(), params)
		if err != nil {
			writeProblem(w, http.StatusServiceUnavailable, "the consumer service did not answer; retry later")
			return
		}
		defer func() { _ = res.Body.Close() }()
		if s.OwnRecordsOnly && res.StatusCode == http.StatusOK {
			s.relayOwn(w, res, user)
			return
		}
		relay(w, res)
	})
}

// relayOwn relays a browse answer with only user's records in it.
func (s Seed) relayOwn(w http.ResponseWriter, res *http.Response, user string) {
	var page map[string]json.RawMessage
	var messages []json.RawMessage
	err := json.NewDecoder(io.LimitReader(res.Body, maxConsumerBytes)).Decode(&page)
	if err == nil {
		err = json.Unmarshal(page["messages"], &messages)
	}
	if err != nil {
		s.Log.Error("the consumer's answer to a browse is not its JSON page", "err", err)
		writeProblem(w, http.StatusServiceUnavailable, "the consumer service gave an answer that could not be read; retry later")
		return
	}
	own := make([]json.RawMessage, 0, len(messages))
	for _, m := range messages {
		var rec struct {
			Value *struct {
				UserID string `json:"user_id"`
			} `json:"value"`
		}
		// Poison records (no envelope) belong to nobody: left out.
		if json.Unmarshal(m, &rec) == nil && rec.Value != nil && rec.Value.UserID == user {
			own = append(own, m)
		}
	}
	page["messages"], _ = json.Marshal(own)
	page["count"], _ = json.Marshal(len(own))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(page)
}

// messagesParams maps the seed's query parameters onto the consumer's
// seed form (topic=, from type= or topic=) and reports whether they ask to
// consume (latest=true); empty ones count as absent.
func messagesParams(r *http.Request) (*GetMessagesParams, bool, *problemDetail) {
	q := r.URL.Query()
	var p GetMessagesParams
	for _, name := range []string{"topic", "type"} {
		if v := q.Get(name); v != "" {
			// The consumer validates the value and answers 422, relayed.
			p.Topic = &v
		}
	}
	latest := false
	if v := q.Get("latest"); v != "" {
		switch strings.ToLower(v) {
		case "true", "1", "yes", "on":
			latest = true
		case "false", "0", "no", "off":
		default:
			return nil, false, &problemDetail{Location: "query.latest", Message: "must be a boolean: true/false, 1/0, yes/no or on/off"}
		}
		p.Latest = &v
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, false, &problemDetail{Location: "query.limit", Message: "must be an integer"}
		}
		p.Limit = &n
	}
	return &p, latest, nil
}

// relay copies an upstream answer to w: status, body and the headers that
// describe it.
func relay(w http.ResponseWriter, res *http.Response) {
	for _, h := range []string{"Content-Type", "Retry-After"} {
		if v := res.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(res.StatusCode)
	// A failure here is the client or the upstream going away mid-body;
	// the status is already sent, so there is nothing left to tell.
	_, _ = io.Copy(w, res.Body)
}
