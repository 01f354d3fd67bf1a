package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/integr8scode/integr8scode/domain"
)

// maxBodyBytes bounds a request body: the largest script and stdin plus room
// for JSON escaping.
const maxBodyBytes = 4 * (domain.MaxScriptBytes + domain.MaxStdinBytes)

// decodeJSON reads one JSON object into v. It refuses, with errors a user
// can act on and in the API's own words: a Content-Type other than
// application/json (415), bodies over maxBodyBytes (413) or shorter than
// their Content-Length, malformed JSON, trailing data, duplicate or unknown
// fields and values of the wrong type (400), and text that is not valid
// UTF-8, lone surrogate escapes included (422). Nothing is silently
// rewritten: what is stored is exactly what was sent.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	raw, err := readBody(w, r)
	if err != nil {
		return err
	}
	return unmarshalStrict(raw, v)
}

// requireJSON accepts application/json, with a UTF-8 charset or none. A
// browser can send text/plain across origins without asking first, so
// anything else is refused before the body is read.
func requireJSON(r *http.Request) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return domain.Errorf(eUnsupportedMediaType, "send the body as Content-Type: application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return domain.Errorf(eUnsupportedMediaType, "the body must be UTF-8 (charset=utf-8 or none)")
	}
	return nil
}

// hasBody tells whether a request carries a body at all.
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 || len(r.TransferEncoding) > 0
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, domain.Errorf(domain.ETOOLARGE, "request body is larger than %d bytes", tooLarge.Limit)
	case err != nil:
		// The client stopped early (a body shorter than its
		// Content-Length) or sent too slowly for the read timeout.
		return nil, domain.Errorf(domain.EINVALID, "request body is incomplete: it ended early or arrived too slowly")
	}
	return raw, nil
}

// unmarshalStrict is decodeJSON without the HTTP parts, for the fuzzer.
func unmarshalStrict(raw []byte, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return domain.Errorf(domain.EINVALID, "request body is empty; send a JSON object")
	}
	if err := checkSyntax(raw); err != nil {
		return err
	}
	if !utf8.Valid(raw) || hasLoneSurrogate(raw) {
		return domain.Errorf(domain.EUNPROCESSABLE, "request body is not valid UTF-8")
	}
	if err := checkDuplicateKeys(raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeDecodeError(err)
	}
	return nil
}

// checkSyntax accepts exactly one JSON object and nothing after it.
func checkSyntax(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var m json.RawMessage
	if err := dec.Decode(&m); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return domain.Errorf(domain.EINVALID, "request body is not valid JSON (at byte %d)", syntax.Offset)
		}
		return domain.Errorf(domain.EINVALID, "request body is not valid JSON (it ends too early)")
	}
	if _, err := dec.Token(); err != io.EOF {
		return domain.Errorf(domain.EINVALID, "request body has data after the JSON object")
	}
	if m[0] != '{' {
		return domain.Errorf(domain.EINVALID, "request body must be a JSON object")
	}
	return nil
}

// hasLoneSurrogate reports a \uD800-\uDFFF escape that is not part of a
// surrogate pair in syntactically valid JSON. encoding/json would turn it
// into U+FFFD without a word.
func hasLoneSurrogate(raw []byte) bool {
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\':
			i++
			if raw[i] != 'u' {
				continue
			}
			r := hex4(raw[i+1 : i+5])
			i += 4
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return true // a low surrogate with no high one before it
			case r >= 0xD800 && r <= 0xDBFF:
				if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
					return true
				}
				low := hex4(raw[i+3 : i+7])
				if low < 0xDC00 || low > 0xDFFF {
					return true
				}
				i += 6
			}
		}
	}
	return false
}

// hex4 reads four hex digits (valid JSON guarantees them).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// jsonLevel is one open object or array while checkDuplicateKeys walks.
type jsonLevel struct {
	seen map[string]bool // nil for an array
	key  bool            // the next token of an object is a key
}

// checkDuplicateKeys refuses an object that names a field twice, at any
// depth. encoding/json keeps the last value and matches field names without
// regard to case, so "script" and "Script" count as the same field.
func checkDuplicateKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var stack []*jsonLevel
	valueDone := func() {
		if len(stack) > 0 {
			stack[len(stack)-1].key = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return domain.Errorf(domain.EINVALID, "request body is not valid JSON")
		}
		if n := len(stack); n > 0 && stack[n-1].seen != nil && stack[n-1].key {
			if name, ok := tok.(string); ok {
				k := strings.ToLower(name)
				if stack[n-1].seen[k] {
					return domain.Errorf(domain.EINVALID, "field %q appears more than once", bounded(name, 64))
				}
				stack[n-1].seen[k] = true
				stack[n-1].key = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &jsonLevel{seen: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, &jsonLevel{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// describeDecodeError says what is wrong with a well-formed body in the
// API's words: field paths as sent, JSON types, never Go's type names.
func describeDecodeError(err error) error {
	var typ *json.UnmarshalTypeError
	var said *domain.Error
	switch {
	case errors.As(err, &said):
		// A field's own decoder (optionalQuota) already said it in the
		// API's words: keep them rather than fall back to the vague default.
		return said
	case errors.As(err, &typ) && typ.Field == "":
		return domain.Errorf(domain.EINVALID, "request body must be a JSON object")
	case errors.As(err, &typ):
		return domain.Errorf(domain.EINVALID, "field %q must be %s", bounded(typ.Field, 64), jsonKind(typ.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return domain.Errorf(domain.EINVALID, "unknown field %s", bounded(name, 66))
	}
	return domain.Errorf(domain.EINVALID, "request body does not match the expected fields")
}

// jsonKind names what a Go type expects, as a JSON reader would say it.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "of another type"
}
