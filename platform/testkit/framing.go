package testkit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"example.com/shop/platform/problem"
)

// HiddenRequest is a request to method path as an attacker hides it in another's body,
// with a Content-Length body when body is not empty. It asks for the connection to be
// closed, so a server that serves it ends the exchange there, and RawExchange shows it
// as a second answer instead of waiting for more.
func HiddenRequest(method, path string, headers []string, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: hidden.test\r\n", method, path)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("Connection: close\r\n\r\n" + body)
	return b.String()
}

// SmuggleCLTE is the classic request smuggling attack: a request to method path whose
// length is given twice, by a Content-Length that covers everything sent and by
// Transfer-Encoding: chunked, whose body (body in one chunk) ends before hidden. A server
// going by Content-Length sees one request; one going by the chunks sees hidden as the
// connection's next request. headers are extra header lines, e.g. "Authorization: ...".
func SmuggleCLTE(method, path string, headers []string, body, hidden string) string {
	var chunked string
	if body != "" {
		chunked = fmt.Sprintf("%x\r\n%s\r\n", len(body), body)
	}
	chunked += "0\r\n\r\n" + hidden
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: shop.test\r\n", method, path)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s", len(chunked), chunked)
	return b.String()
}

// RawResponse is one answer read off a connection, with its body.
type RawResponse struct {
	*http.Response
	Body string
}

// RawExchange writes raw, exactly as given, to the server at addr (host:port, or a base
// URL as ServeLoopback returns it) in one write, and reads every answer until the server
// closes the connection. It fails the test if the server has not closed it within ten
// seconds, or answers something that is not HTTP.
func RawExchange(t testing.TB, addr, raw string) []RawResponse {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
	var answers []RawResponse
	br := bufio.NewReader(conn)
	for {
		if _, err := br.Peek(1); errors.Is(err, io.EOF) {
			return answers
		} else if err != nil {
			t.Fatalf("after %d answers the connection neither closed nor answered: %v", len(answers), err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", len(answers)+1, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("answer %d: %v", len(answers)+1, err)
		}
		answers = append(answers, RawResponse{Response: resp, Body: string(body)})
	}
}

// RequireFramingRefused checks the answers to a request with ambiguous framing: exactly
// one, 400 problem+json, with Connection: close, and the server closed the connection
// after it, so nothing hidden behind the request was answered.
func RequireFramingRefused(t testing.TB, answers []RawResponse) {
	t.Helper()
	if len(answers) != 1 {
		got := make([]string, len(answers))
		for i, a := range answers {
			got[i] = a.Status
		}
		t.Fatalf("%d answers %v, want one: a request hidden in the body was served", len(answers), got)
	}
	// net/http takes "Connection: close" out of the header into Close.
	a := answers[0]
	if a.StatusCode != http.StatusBadRequest || a.Header.Get("Content-Type") != problem.ContentType || !a.Close {
		t.Fatalf("answer %s, Content-Type %q, Connection: close %t, want 400 problem+json and close: %s",
			a.Status, a.Header.Get("Content-Type"), a.Close, a.Body)
	}
}
