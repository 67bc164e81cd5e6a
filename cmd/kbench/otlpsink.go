package main

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync/atomic"
	"time"
)

// otlpSink is the tracing scenario's OTLP/HTTP trace receiver: it reads
// each export request, counts its spans and drops them, so tracing on
// pays the export (batching, encoding, the HTTP request) but no
// collector's storage. It runs as a process of its own (`kbench otlpsink
// ADDR`), so that its CPU is not counted as the services'.
type otlpSink struct {
	requests, bytes, spans, bad atomic.Int64
}

// SinkStats is what the receiver got.
type SinkStats struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
	Spans    int64 `json:"spans"`
	// Bad counts requests it could not read (not OTLP protobuf).
	Bad int64 `json:"bad"`
}

func (s *otlpSink) stats() SinkStats {
	return SinkStats{Requests: s.requests.Load(), Bytes: s.bytes.Load(), Spans: s.spans.Load(), Bad: s.bad.Load()}
}

// ServeHTTP takes POST /v1/traces (OTLP protobuf, plain or gzip) and
// answers an empty ExportTraceServiceResponse; GET /stats is SinkStats.
func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/traces":
		n, size, err := readExport(r)
		s.requests.Add(1)
		s.bytes.Add(size)
		if err != nil {
			s.bad.Add(1)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.spans.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodGet && r.URL.Path == "/stats":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.stats())
	default:
		http.NotFound(w, r)
	}
}

// readExport counts the spans of an export request; size is its body's
// length on the wire.
func readExport(r *http.Request) (spans, size int64, err error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		_, _ = io.Copy(io.Discard, r.Body)
		return 0, 0, fmt.Errorf("content type %q: only OTLP protobuf is counted", ct)
	}
	wire := &countingReader{r: r.Body}
	var body io.Reader = wire
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(wire)
		if err != nil {
			return 0, 0, err
		}
		defer gz.Close()
		body = gz
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return 0, wire.n, err
	}
	spans, err = countSpans(data)
	return spans, wire.n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// countSpans counts the spans of an OTLP ExportTraceServiceRequest:
// resource_spans (1) → scope_spans (2) → spans (2). A hand-rolled walk of
// the protobuf wire format: the OTLP protobuf types are not a direct
// dependency of the module.
func countSpans(req []byte) (int64, error) {
	var n int64
	err := eachField(req, 1, func(resourceSpans []byte) error {
		return eachField(resourceSpans, 2, func(scopeSpans []byte) error {
			return eachField(scopeSpans, 2, func([]byte) error { n++; return nil })
		})
	})
	return n, err
}

var errProto = errors.New("malformed protobuf")

// eachField calls fn with the value of every length-delimited field num
// of the protobuf message msg, skipping the other fields.
func eachField(msg []byte, num uint64, fn func([]byte) error) error {
	for len(msg) > 0 {
		tag, n := binary.Uvarint(msg)
		if n <= 0 {
			return errProto
		}
		msg = msg[n:]
		switch tag & 7 {
		case 0: // varint
			if _, n = binary.Uvarint(msg); n <= 0 {
				return errProto
			}
			msg = msg[n:]
		case 1: // fixed64
			if len(msg) < 8 {
				return errProto
			}
			msg = msg[8:]
		case 5: // fixed32
			if len(msg) < 4 {
				return errProto
			}
			msg = msg[4:]
		case 2: // length-delimited
			l, n := binary.Uvarint(msg)
			if n <= 0 || l > uint64(len(msg)-n) {
				return errProto
			}
			v := msg[n : n+int(l)]
			msg = msg[n+int(l):]
			if tag>>3 == num {
				if err := fn(v); err != nil {
					return err
				}
			}
		default:
			return errProto
		}
	}
	return nil
}

// serveSink is `kbench otlpsink ADDR`.
func serveSink(addr string) error {
	srv := &http.Server{Addr: addr, Handler: &otlpSink{}, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// sinkProc is the receiver's process.
type sinkProc struct {
	cmd  *exec.Cmd
	addr string
}

func startSink(ctx context.Context) (*sinkProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "otlpsink", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &sinkProc{cmd: cmd, addr: addr}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return s, nil
		}
	}
	s.stop()
	return nil, errors.New("the OTLP receiver did not start within 10s")
}

// endpoint is the receiver's base URL, for OTEL_EXPORTER_OTLP_ENDPOINT.
func (s *sinkProc) endpoint() string { return "http://" + s.addr }

func (s *sinkProc) stats(ctx context.Context) (SinkStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint()+"/stats", nil)
	if err != nil {
		return SinkStats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return SinkStats{}, err
	}
	defer resp.Body.Close()
	var st SinkStats
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (s *sinkProc) stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}
