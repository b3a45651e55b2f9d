package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/server"
	"example.com/shop/platform/testkit"
)

// TestAmbiguousFramingIsRefusedAndTheConnectionClosed plays request smuggling from the
// attacker's side, on raw sockets: each request gives its length in a way two servers can
// read differently, and carries a second request behind what the service would read as
// its body. Each is answered once, 400 problem+json, and the connection closed; neither
// the request nor the hidden one reaches a handler; the refusal is logged and counted.
// Plain chunked and Content-Length requests followed by the same second request show the
// probe can tell: both are served.
func TestAmbiguousFramingIsRefusedAndTheConnectionClosed(t *testing.T) {
	var logs testkit.Logs
	app := server.New(server.Options{Name: "test", Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	var (
		mu   sync.Mutex
		hits = map[string]int{}
	)
	count := func(c *fiber.Ctx) error {
		mu.Lock()
		hits[c.Path()]++
		mu.Unlock()
		return c.SendString("served")
	}
	app.Post("/submit", count)
	app.Get("/hidden", count)
	base := testkit.ServeLoopback(t, app)

	const (
		line   = "POST /submit HTTP/1.1\r\nHost: shop.test\r\n"
		hidden = "GET /hidden HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n"
		// chunks is an empty chunked body: whatever follows it is, to a server going by
		// the chunks, the next request.
		chunks = "0\r\n\r\n"
	)
	cl := func(n int) string { return "Content-Length: " + strconv.Itoa(n) + "\r\n" }
	refused := []struct {
		name, raw, reason string
	}{
		{"Content-Length then Transfer-Encoding", line + cl(len(chunks+hidden)) + "Transfer-Encoding: chunked\r\n\r\n" + chunks + hidden,
			"both Content-Length and Transfer-Encoding"},
		{"Transfer-Encoding then Content-Length", line + "Transfer-Encoding: chunked\r\n" + cl(len(chunks+hidden)) + "\r\n" + chunks + hidden,
			"both Content-Length and Transfer-Encoding"},
		{"xchunked", line + "Transfer-Encoding: xchunked\r\n\r\n" + chunks + hidden, "transfer coding other than chunked"},
		{"chunked, identity", line + "Transfer-Encoding: chunked, identity\r\n\r\n" + chunks + hidden, "transfer coding other than chunked"},
		{"identity, chunked", line + "Transfer-Encoding: identity, chunked\r\n\r\n" + chunks + hidden, "transfer coding other than chunked"},
		{"Chunked", line + "Transfer-Encoding: Chunked\r\n\r\n" + chunks + hidden, "transfer coding other than chunked"},
		{"tab before chunked", line + "Transfer-Encoding:\tchunked\r\n\r\n" + chunks + hidden, "transfer coding other than chunked"},
		{"identity", line + "Transfer-Encoding: identity\r\n" + cl(0) + "\r\n" + hidden, "both Content-Length and Transfer-Encoding"},
		{"two Transfer-Encodings", line + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + hidden,
			"several Transfer-Encoding headers"},
		{"two different Content-Lengths", line + cl(0) + cl(len(hidden)) + "\r\n" + hidden, "several Content-Length headers"},
		{"bare LF with Transfer-Encoding and Content-Length", line + "Transfer-Encoding: chunked\n" + cl(len(chunks+hidden)) + "\r\n" + chunks + hidden,
			"bare LF in the headers"},
		{"bare LF line endings", line + "X-Pad: a\nContent-Length: 0\n\n" + hidden, "bare LF in the headers"},
		{"bare CR", line + cl(0) + "X-Pad: a\rTransfer-Encoding: chunked\r\n\r\n" + chunks + hidden, "bare CR in the headers"},
		{"folded header line", line + "Transfer-Encoding:\r\n chunked\r\n\r\n" + chunks + hidden, "folded header line"},
		{"Transfer-Encoding in HTTP/1.0", "POST /submit HTTP/1.0\r\nHost: shop.test\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + hidden,
			"Transfer-Encoding in an HTTP/1.0 request"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			clear(hits)
			mu.Unlock()
			before := len(logs.String())
			answers := testkit.RawExchange(t, base, tc.raw)
			testkit.RequireFramingRefused(t, answers)
			mu.Lock()
			defer mu.Unlock()
			if len(hits) != 0 {
				t.Fatalf("handlers reached: %v", hits)
			}
			if got := refusalReasons(t, logs.String()[before:]); len(got) != 1 || got[0] != tc.reason {
				t.Fatalf("refusals logged %q, want [%q]", got, tc.reason)
			}
		})
	}

	served := []struct{ name, raw string }{
		{"chunked", line + "Transfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n" + chunks + hidden},
		{"Content-Length", line + cl(4) + "\r\nbody" + hidden},
	}
	for _, tc := range served {
		t.Run("plain "+tc.name, func(t *testing.T) {
			answers := testkit.RawExchange(t, base, tc.raw)
			if len(answers) != 2 || answers[0].Body != "served" || answers[1].Body != "served" {
				t.Fatalf("answers %+v, want both requests served", answers)
			}
		})
	}

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `_count{method="POST",route="refused",service="test",status="400"} ` + strconv.Itoa(len(refused)); !strings.Contains(string(metrics), want) {
		t.Errorf("metrics lack %s", want)
	}
}

// refusalReasons are the reasons of the refusals in a JSON log.
func refusalReasons(t *testing.T, logs string) []string {
	t.Helper()
	var reasons []string
	for l := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		var m struct{ Route, Refused string }
		if json.Unmarshal([]byte(l), &m) == nil && m.Route == "refused" {
			reasons = append(reasons, m.Refused)
		}
	}
	return reasons
}
