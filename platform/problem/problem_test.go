package problem_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"go.opentelemetry.io/otel/trace"

	"example.com/shop/platform/problem"
	"example.com/shop/platform/validation"
)

var errSoldOut = errors.New("product is sold out")

func TestHandlerMapsErrors(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	app := fiber.New(fiber.Config{ErrorHandler: problem.Handler(log, problem.Map{{Err: errSoldOut, Status: 409}})})
	app.Get("/domain", func(*fiber.Ctx) error { return fmt.Errorf("reserving: %w", errSoldOut) })
	app.Get("/problem", func(*fiber.Ctx) error {
		return problem.Invalid("quantity is invalid", problem.FieldError{Field: "quantity", Message: "must be 1..100"})
	})
	app.Get("/fields", func(*fiber.Ctx) error {
		var f validation.Fields
		f.Add("items[0].quantity", "must be 1..100")
		f.Add("items[1].productId", "is required")
		return fmt.Errorf("creating an order: %w", f.Err())
	})
	app.Get("/bug", func(*fiber.Ctx) error {
		return errors.New(`pq: duplicate key value violates unique constraint "orders_pkey" password=hunter2`)
	})

	cases := []struct {
		path       string
		status     int
		detail     string
		mustNotSay string
	}{
		{"/domain", 409, "reserving: product is sold out", ""},
		{"/problem", 422, "quantity is invalid", ""},
		{"/fields", 422, "the request has invalid values", "creating an order"},
		{"/bug", 500, "the server could not complete the request", "hunter2"},
		{"/nothing?access_token=secret", 404, "no such resource", "secret"},
	}
	for _, tc := range cases {
		resp, err := app.Test(httptest.NewRequest("GET", tc.path, nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != problem.ContentType {
			t.Errorf("%s: %d %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var p problem.Problem
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if p.Status != tc.status || !strings.HasPrefix(p.Detail, tc.detail) || p.Title == "" {
			t.Errorf("%s: %+v", tc.path, p)
		}
		if tc.path == "/fields" && (len(p.Errors) != 2 || p.Errors[1] != (problem.FieldError{Field: "items[1].productId", Message: "is required"})) {
			t.Errorf("%s: want both fields listed: %s", tc.path, body)
		}
		if tc.mustNotSay != "" && strings.Contains(string(body), tc.mustNotSay) {
			t.Errorf("%s: body leaks %q: %s", tc.path, tc.mustNotSay, body)
		}
	}
	if !strings.Contains(logs.String(), "duplicate key") {
		t.Error("the unexpected error was not logged")
	}
}

func TestExtensions(t *testing.T) {
	p := problem.New(402, "card declined").With("paymentId", "p-1").With("status", 999)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if m["paymentId"] != "p-1" || m["status"] != float64(402) || m["detail"] != "card declined" {
		t.Fatalf("%s", b)
	}
}

// TestTraceID: a problem answered inside a traced request names its trace id, so the
// caller can quote it; an untraced request's problem has no traceId member at all.
func TestTraceID(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
	})
	app := fiber.New(fiber.Config{ErrorHandler: problem.Handler(slog.New(slog.DiscardHandler), nil)})
	app.Get("/traced", func(c *fiber.Ctx) error {
		c.SetUserContext(trace.ContextWithSpanContext(c.UserContext(), sc))
		return problem.Conflict("the order is already paid")
	})
	app.Get("/untraced", func(*fiber.Ctx) error { return problem.Conflict("the order is already paid") })

	for path, want := range map[string]string{"/traced": "4bf92f3577b34da6a3ce929d0e0e4736", "/untraced": ""} {
		resp, err := app.Test(httptest.NewRequest("GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got, present := body["traceId"]
		if want == "" && present {
			t.Errorf("%s: traceId = %v, want no member", path, got)
		}
		if want != "" && got != want {
			t.Errorf("%s: traceId = %v, want %s", path, got, want)
		}
	}
}
