package telemetry

import (
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/propagation"
)

// RequestHeader lets a propagator read and write the headers of a fasthttp request: the
// incoming request of a Fiber handler (Extract) and the gateway's upstream request (Inject).
type RequestHeader struct{ *fasthttp.RequestHeader }

var _ propagation.TextMapCarrier = RequestHeader{}

// Get returns the value of key, "" when absent.
func (h RequestHeader) Get(key string) string { return string(h.Peek(key)) }

// Set replaces the value of key.
func (h RequestHeader) Set(key, value string) { h.RequestHeader.Set(key, value) }

// Keys lists the header names.
func (h RequestHeader) Keys() []string {
	keys := make([]string, 0, h.Len())
	h.VisitAll(func(k, _ []byte) { keys = append(keys, string(k)) })
	return keys
}
