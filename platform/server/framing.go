package server

import (
	"bytes"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// framingFault names what makes a request's framing ambiguous, in the platform's words for
// the log, or returns "" when there is nothing.
//
// Request smuggling needs two servers that disagree about where a request ends: a load
// balancer that goes by Content-Length and a service that goes by Transfer-Encoding, or
// one that ends a line at a bare LF and one that does not. fasthttp (v1.51) settles every
// such ambiguity its own way and keeps the connection open: Content-Length beside
// Transfer-Encoding reads the body as chunked, any Transfer-Encoding but "identity"
// (xchunked, "chunked, identity", a second header) counts as chunked, the last of several
// Content-Lengths wins, and a bare LF ends a line. Whatever follows the body as it read it
// is served as the connection's next request, so a request hidden in a body is answered.
//
// observeRefusals calls it before anything else runs and refuses every such request
// (RFC 9112 sections 6.1 and 6.3): 400, and the connection closed, so bytes fasthttp has
// already buffered past the body are never read as a request. It reads the header block
// as received, RequestHeader.RawHeaders: fasthttp copies the block aside before it parses
// it (and normalises names in place in its read buffer), so the copy holds every
// duplicate, every obfuscated value and every line ending as the client sent them. The
// request line is not in it: a bare LF ending that line goes unseen.
//
// The one transfer coding accepted is "chunked", lowercase, alone, in one header and
// without a Content-Length beside it: what every client and proxy sends. RFC 9112 compares
// codings case-insensitively and answers 501 to a coding it does not know, but an
// uncommon spelling is how a request is made to mean two things to two servers, so here it
// is simply bad framing (400).
//
// Upgrading fasthttp would not replace this check, and it is not done here. Under v1.79
// (which Fiber v2.52 builds with) the same table test shows the parser refusing several
// Content-Lengths, several Transfer-Encodings and codings such as xchunked, but still
// serving a request with both Content-Length and Transfer-Encoding (it closes the
// connection only afterwards), and serving the request hidden behind "Chunked", a tab
// before chunked, bare LF line endings and a folded Transfer-Encoding. Moving the HTTP
// stack of every service 28 releases is a change of its own, to be made with the whole
// suite and the end-to-end run; this check holds under either version, and fasthttp's
// server has no option for any of it (DisableHeaderNamesNormalizing only changes how
// names are stored, which RawHeaders does not see).
func framingFault(h *fasthttp.RequestHeader) string {
	var contentLengths, transferEncodings int
	chunked := true
	raw := h.RawHeaders()
	for len(raw) > 0 {
		line, rest, _ := bytes.Cut(raw, newline)
		raw = rest
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return "bare LF in the headers"
		}
		line = line[:len(line)-1]
		if bytes.IndexByte(line, '\r') >= 0 {
			return "bare CR in the headers"
		}
		if len(line) == 0 {
			break // the empty line that ends the header block
		}
		if line[0] == ' ' || line[0] == '\t' {
			// A folded line (obs-fold) continues the previous header for some parsers
			// and starts a new one for others; RFC 9112 section 5.2 allows refusing it.
			return "folded header line"
		}
		name, value, _ := bytes.Cut(line, colon)
		switch {
		case bytes.EqualFold(name, headerContentLength):
			contentLengths++
		case bytes.EqualFold(name, headerTransferEncoding):
			transferEncodings++
			// Only spaces are trimmed: a tab before the value is one of the obfuscations.
			chunked = chunked && bytes.Equal(bytes.Trim(value, " "), codingChunked)
		}
	}
	switch {
	case contentLengths > 1:
		return "several Content-Length headers"
	case transferEncodings > 1:
		return "several Transfer-Encoding headers"
	case transferEncodings > 0 && contentLengths > 0:
		return "both Content-Length and Transfer-Encoding"
	case !chunked:
		return "transfer coding other than chunked"
	case transferEncodings > 0 && !h.IsHTTP11():
		// HTTP/1.0 has no transfer codings: its framing is faulty (RFC 9112 section 6.1).
		return "Transfer-Encoding in an HTTP/1.0 request"
	}
	return ""
}

var (
	newline                = []byte{'\n'}
	colon                  = []byte{':'}
	headerContentLength    = []byte(fiber.HeaderContentLength)
	headerTransferEncoding = []byte(fiber.HeaderTransferEncoding)
	codingChunked          = []byte("chunked")
)

// framingDetail is what a client is told; the log gets framingFault's reason.
const framingDetail = "the request's length could be read in more than one way: send one Content-Length " +
	"or Transfer-Encoding: chunked alone, and end every header line with CRLF"
