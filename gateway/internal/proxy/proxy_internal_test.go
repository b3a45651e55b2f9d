package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	cases := []struct {
		err  error
		want int
	}{
		{fasthttp.ErrTimeout, http.StatusGatewayTimeout},
		{fasthttp.ErrDialTimeout, http.StatusGatewayTimeout},
		{fmt.Errorf("reading: %w", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}), http.StatusGatewayTimeout},
		{fasthttp.ErrNoFreeConns, http.StatusServiceUnavailable},
		{refused, http.StatusBadGateway},
		{fasthttp.ErrConnectionClosed, http.StatusBadGateway},
		{fasthttp.ErrBodyTooLarge, http.StatusBadGateway},
		{errors.New("anything else"), http.StatusBadGateway},
	}
	for _, tc := range cases {
		p := classify(tc.err)
		if p.Status != tc.want {
			t.Errorf("%v: %d, want %d", tc.err, p.Status, tc.want)
		}
		if p.Detail == "" || p.Detail == tc.err.Error() {
			t.Errorf("%v: detail %q must explain without repeating the error", tc.err, p.Detail)
		}
	}
	if p := classify(fasthttp.ErrNoFreeConns); p.RetryAfter < 1 {
		t.Error("503 without Retry-After")
	}
}

func TestForwardRequestHeader(t *testing.T) {
	forwarded := []string{"Authorization", "Content-Type", "Accept", "Accept-Language", "Idempotency-Key",
		"If-Match", "User-Agent", "X-Api-Version", "X-Forwardedness"}
	dropped := []string{"Connection", "keep-alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
		"Proxy-Authorization", "Proxy-Connection", "Host", "Content-Length", "X-Request-Id", "Traceparent",
		"X-Forwarded-For", "x-forwarded-proto", "X-Forwarded-Anything", "Forwarded", "X-Real-Ip",
		"X-User-Id", "x-user-roles", "X-Roles", "X-Auth-Request-Email", "X-Original-Url", "X-Rewrite-Url",
		"X-Http-Method-Override", "Cookie", "True-Client-Ip"}
	for _, k := range forwarded {
		if !forwardRequestHeader([]byte(k)) {
			t.Errorf("%s is dropped", k)
		}
	}
	for _, k := range dropped {
		if forwardRequestHeader([]byte(k)) {
			t.Errorf("%s is forwarded", k)
		}
	}
}

func TestConnectionTokens(t *testing.T) {
	// Parsed from the wire, as the gateway meets them: fasthttp keeps "close" as a flag
	// and the other Connection lines as headers.
	var h fasthttp.RequestHeader
	raw := "GET / HTTP/1.1\r\nHost: x\r\nConnection: X-A, x-b\r\nConnection: close\r\nConnection: X-C ,keep-alive\r\n\r\n"
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	var got tokens
	h.VisitAll(got.collect)
	for _, k := range []string{"X-A", "X-B", "x-c"} {
		if !got.has([]byte(k)) {
			t.Errorf("%s not declared hop-by-hop (tokens %q)", k, got)
		}
	}
	if got.has([]byte("X-D")) || got.has([]byte("close")) {
		t.Errorf("tokens %q", got)
	}
}

func TestValidTraceparent(t *testing.T) {
	for v, want := range map[string]bool{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":  true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00":  true,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":  false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01":  false,
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01":  false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x": false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01":  false,
		"00-4bf92f3577b34da6a3ce929d0e0e473\n-00f067aa0ba902b7-01": false,
		"": false,
	} {
		if got := validTraceparent([]byte(v)); got != want {
			t.Errorf("%q: %v, want %v", v, got, want)
		}
	}
}
