// Package logging gives every service the same structured logger: JSON lines on standard
// output with the service's name on each, for the container runtime to collect.
//
// Lines are buffered. Without a buffer every access-log line is a write system call of
// its own, which in the gateway's benchmark cost more than any security check on the
// request (about 2 µs of 28). The buffer is flushed every FlushInterval, when it is full,
// at once after any record at Warn or above (so a failure is on the console before
// whatever follows it), and by the close function New returns. What a process killed
// outright loses is at most the last FlushInterval of Info lines.
//
// A line logged with a context that carries an OpenTelemetry span (the request's, from the
// tracing middleware of platform/server) names its trace_id and span_id, so an operator goes
// from any line to the whole request's trace, and from a trace to every line it wrote.
package logging

import (
	"context"
	"io"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap/zapcore"
)

// FlushInterval is the longest an Info line waits in the buffer.
const FlushInterval = 100 * time.Millisecond

// bufferSize holds a few hundred access-log lines; a full buffer is written at once.
const bufferSize = 64 << 10

// New returns the JSON logger of service, writing to w through a buffer, and the function
// that flushes the buffer and stops its timer; call it when the service stops.
func New(w io.Writer, service string) (*slog.Logger, func() error) {
	// zapcore's buffered writer is the well-kept implementation of exactly this (size and
	// interval bounds, a background flusher, Stop); slog only needs its io.Writer side.
	// struct{io.Writer} hides w's own Sync: fsync on a pipe or terminal only fails.
	buf := &zapcore.BufferedWriteSyncer{
		WS:            zapcore.AddSync(struct{ io.Writer }{w}),
		Size:          bufferSize,
		FlushInterval: FlushInterval,
	}
	h := flushOnWarn{Handler: traceContext{slog.NewJSONHandler(buf, nil)}, flush: buf.Sync}
	return slog.New(h).With("service", service), buf.Stop
}

// flushOnWarn writes records at Warn and above through at once.
type flushOnWarn struct {
	slog.Handler
	flush func() error
}

func (h flushOnWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		_ = h.flush()
	}
	return err
}

func (h flushOnWarn) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushOnWarn{Handler: h.Handler.WithAttrs(attrs), flush: h.flush}
}

func (h flushOnWarn) WithGroup(name string) slog.Handler {
	return flushOnWarn{Handler: h.Handler.WithGroup(name), flush: h.flush}
}

// traceContext adds the trace and span ids of the span in a record's context, if any.
type traceContext struct{ slog.Handler }

func (h traceContext) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceContext) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceContext{h.Handler.WithAttrs(attrs)}
}

func (h traceContext) WithGroup(name string) slog.Handler {
	return traceContext{h.Handler.WithGroup(name)}
}
