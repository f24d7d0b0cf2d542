package domain

import "testing"

func TestIDSet(t *testing.T) {
	s := IDSet{}
	if _, ok := s.Get("a1"); ok {
		t.Fatal("empty set holds a1")
	}
	s.Set("a1", false)
	s.Set("a2", true)
	if f, ok := s.Get("a1"); !ok || f {
		t.Fatalf("a1: %v %v, want false true", f, ok)
	}
	if f, ok := s.Get("a2"); !ok || !f {
		t.Fatalf("a2: %v %v, want true true", f, ok)
	}
	s.Set("a1", true)
	if f, _ := s.Get("a1"); !f || len(s) != 2 {
		t.Fatalf("a1 after Set(true): %v, %d entries", f, len(s))
	}
	for _, id := range []string{"", "A1", "a1 ", "a10"} {
		if _, ok := s.Get(id); ok {
			t.Errorf("%q found", id)
		}
	}
}
