package web

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
)

// requestIDHeader is X-Request-ID in the canonical form that http.Header
// stores, so that it can be read and set without canonicalizing.
const requestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds a client-supplied id, which ends up in every log
// line of the request.
const maxRequestIDLen = 128

type requestIDKey struct{}

// RequestID returns the id of the request that ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestID returns the client's X-Request-ID when it is safe to log and
// echo, and a new random id otherwise.
func requestID(h http.Header) string {
	if v := h[requestIDHeader]; len(v) > 0 && validRequestID(v[0]) {
		return v[0]
	}
	return newRequestID()
}

// validRequestID accepts the characters of UUIDs, ULIDs and trace ids and
// rejects anything that could forge log fields or headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}

// newRequestID returns 64 random bits as 16 hex digits. The ids correlate
// log lines; they are not secrets, so math/rand's fast generator is enough.
func newRequestID() string {
	var raw [8]byte
	binary.LittleEndian.PutUint64(raw[:], rand.Uint64()) //nolint:gosec // ids are not secrets

	var out [16]byte
	hex.Encode(out[:], raw[:])
	return string(out[:])
}
