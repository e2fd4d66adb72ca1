package jobs

import (
	"regexp"
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	uuidV7 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	now := time.Now()
	a, b := NewID(now), NewID(now.Add(time.Millisecond))
	if !uuidV7.MatchString(a) || !uuidV7.MatchString(b) {
		t.Fatalf("ids %q, %q are not UUIDv7", a, b)
	}
	if a >= b {
		t.Fatalf("id %q of an earlier job sorts after %q", a, b)
	}
	if c := NewID(now); c == a {
		t.Fatalf("two ids of the same millisecond are both %q", a)
	}
}
