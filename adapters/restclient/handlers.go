package restclient

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
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
// query there).
var sendRequired = []string{"session_id", "user_id", "message"}

// SendHandler serves the seed's POST /send: form fields session_id,
// user_id, message_id, type and message (urlencoded or multipart), forwarded
// to the producer's POST /send_message. The producer's answer (200
// {status:"queued", message_id}, or its problem) is relayed with its status;
// the handler's own errors are problem+json: 422 for missing fields, 413,
// 415, 400 for a body that is no form, and 503 when the producer does not
// answer within cfg.Timeout.
func SendHandler(cfg Config) http.Handler {
	producer := newClient(cfg.ProducerURL, cfg.Timeout)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeProblem(w, http.StatusMethodNotAllowed, "use POST with form fields")
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

		body := SendMessageInput{
			SessionId: r.PostForm.Get("session_id"),
			UserId:    r.PostForm.Get("user_id"),
			Message:   r.PostForm.Get("message"),
		}
		if id := r.PostForm.Get("message_id"); id != "" {
			body.MessageId = &id
		}
		if t := r.PostForm.Get("type"); t != "" {
			// The producer validates it and answers 422, relayed, if wrong.
			typ := SendMessageInputType(t)
			body.Type = &typ
		}
		res, err := producer.SendMessage(r.Context(), body)
		if err != nil {
			writeProblem(w, http.StatusServiceUnavailable, "the producer service did not answer; retry later")
			return
		}
		defer func() { _ = res.Body.Close() }()
		relay(w, res)
	})
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

// MessagesHandler serves the seed's GET /messages?type=&limit=&latest=
// (and topic=) by proxying the consumer's GET /messages: the consumer's
// status and body come back unchanged. Other query parameters are not
// forwarded. A limit or latest that is no number or boolean gets 422, and a
// consumer that does not answer within cfg.Timeout 503, both problem+json.
func MessagesHandler(cfg Config) http.Handler {
	consumer := newClient(cfg.ConsumerURL, cfg.Timeout)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeProblem(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		params, perr := messagesParams(r)
		if perr != nil {
			writeProblem(w, http.StatusUnprocessableEntity, "invalid query parameter "+strings.TrimPrefix(perr.Location, "query."), *perr)
			return
		}
		res, err := consumer.GetMessages(r.Context(), params)
		if err != nil {
			writeProblem(w, http.StatusServiceUnavailable, "the consumer service did not answer; retry later")
			return
		}
		defer func() { _ = res.Body.Close() }()
		relay(w, res)
	})
}

// messagesParams maps the seed's query parameters onto the consumer's;
// empty ones count as absent.
func messagesParams(r *http.Request) (*GetMessagesParams, *problemDetail) {
	q := r.URL.Query()
	var p GetMessagesParams
	if v := q.Get("type"); v != "" {
		// The consumer validates the value and answers 422, relayed.
		t := GetMessagesParamsType(v)
		p.Type = &t
	}
	if v := q.Get("topic"); v != "" {
		p.Topic = &v
	}
	if v := q.Get("latest"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, &problemDetail{Location: "query.latest", Message: "must be true or false"}
		}
		p.Latest = &b
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, &problemDetail{Location: "query.limit", Message: "must be an integer"}
		}
		p.Limit = &n
	}
	return &p, nil
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
