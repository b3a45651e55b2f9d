package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"example.com/shop/platform/problem"
)

// decodeJSON reads the request body into dst: 415 for a body that is not JSON, 400 for one
// that cannot be read (malformed, wrong types, trailing data), naming the field where it
// can. Unknown fields are ignored on purpose: a client that sends amount, userId or status
// is not refused, and those values are never read. An empty body is accepted only when
// emptyOK, for requests whose fields are all optional.
func decodeJSON(c *fiber.Ctx, dst any, emptyOK bool) error {
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return problem.BadRequest("the request body is empty; a JSON object is required")
	}
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return problem.New(http.StatusUnsupportedMediaType, "the request body must be application/json")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		return badJSON(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem.BadRequest("the request body must hold a single JSON object")
	}
	return nil
}

func badJSON(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return problem.BadRequest(fmt.Sprintf("the request body is not valid JSON (at byte %d)", syntax.Offset))
	case errors.As(err, &typ) && typ.Field != "":
		p := problem.BadRequest("a field of the request body has the wrong type")
		p.Errors = []problem.FieldError{{Field: typ.Field, Message: "must be " + jsonType(typ.Type.Kind().String())}}
		return p
	case errors.As(err, &typ):
		return problem.BadRequest("the request body must be a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem.BadRequest("the request body is truncated JSON")
	}
	return problem.BadRequest("the request body could not be read as JSON")
}

// jsonType names a Go kind the way a JSON client thinks of it.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "bool":
		return "a boolean"
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "of another type"
}
