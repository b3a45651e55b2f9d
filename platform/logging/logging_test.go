package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"example.com/shop/platform/logging"
)

// lockedBuffer is an io.Writer the test can read while the flusher writes to it.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLinesAreBatchedAndWarnFlushes: many Info lines reach the writer in a few writes, not
// one each, and a Warn record is written through at once, after the lines before it.
func TestLinesAreBatchedAndWarnFlushes(t *testing.T) {
	var out lockedBuffer
	log, closeLog := logging.New(&out, "order")
	defer closeLog()

	const infos = 200
	for i := range infos {
		log.Info("request", "n", i)
	}
	log.Warn("upstream failed", "status", 502)

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != infos+1 {
		t.Fatalf("after a Warn, want all %d lines written, got %d", infos+1, len(lines))
	}
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
		want := "request"
		if i == infos {
			want = "upstream failed"
		}
		if rec["msg"] != want || rec["service"] != "order" {
			t.Fatalf("line %d = %v, want msg %q and service order", i, rec, want)
		}
	}
	// A flush tick may fall between two lines; a line per write would be 201.
	out.mu.Lock()
	writes := out.writes
	out.mu.Unlock()
	if writes > 5 {
		t.Fatalf("%d lines took %d writes: not buffered", infos+1, writes)
	}
}

func TestInfoIsFlushedWithinTheInterval(t *testing.T) {
	var out lockedBuffer
	log, closeLog := logging.New(&out, "gateway")
	defer closeLog()
	log.Info("request")
	deadline := time.Now().Add(20 * logging.FlushInterval)
	for out.String() == "" {
		if time.Now().After(deadline) {
			t.Fatalf("an Info line was still buffered after %s", 20*logging.FlushInterval)
		}
		time.Sleep(logging.FlushInterval / 4)
	}
}

func TestCloseFlushes(t *testing.T) {
	var out lockedBuffer
	log, closeLog := logging.New(&out, "payment")
	log.With("request_id", "r-1").Info("request")
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"request_id":"r-1"`) {
		t.Fatalf("close did not write the buffered line: %q", out.String())
	}
}

// TestLinesNameTheirTrace: a line logged in a span's context carries its trace and span
// ids; a line without one carries neither.
func TestLinesNameTheirTrace(t *testing.T) {
	var out lockedBuffer
	log, closeLog := logging.New(&out, "order")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "traced")
	log.With("component", "outbox").InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "traced too")
	log.InfoContext(context.Background(), "untraced")
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %d: %s", len(lines), out.String())
	}
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
		wantTrace, wantSpan := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		if i == 2 {
			wantTrace, wantSpan = "", ""
		}
		if got, _ := rec["trace_id"].(string); got != wantTrace {
			t.Errorf("line %q: trace_id = %q, want %q", rec["msg"], got, wantTrace)
		}
		if got, _ := rec["span_id"].(string); got != wantSpan {
			t.Errorf("line %q: span_id = %q, want %q", rec["msg"], got, wantSpan)
		}
	}
}
