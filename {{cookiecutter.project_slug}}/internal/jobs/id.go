package jobs

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// NewID returns a job id: a UUIDv7 (RFC 9562) string, 48 bits of Unix
// milliseconds followed by random bits. Every queue backend uses it, so ids
// look the same with and without Redis. Ids sort by creation time, which keeps
// logs and key scans readable, and the 74 random bits make ids unguessable
// and collisions negligible.
func NewID(now time.Time) string {
	var b [16]byte
	// Since Go 1.24 crypto/rand.Read crashes the program instead of returning
	// an error, so there is no error to handle.
	_, _ = rand.Read(b[6:])

	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	b[6] = 0x70 | b[6]&0x0f // version 7
	b[8] = 0x80 | b[8]&0x3f // variant 10

	// Encoding into one array costs a single allocation, for the string.
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
