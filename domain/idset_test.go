package domain

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

func TestIDSet(t *testing.T) {
	var s IDSet
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
	if f, _ := s.Get("a1"); !f || s.Len() != 2 {
		t.Fatalf("a1 after Set(true): %v, %d entries", f, s.Len())
	}
	s.Set("a1", false)
	if f, _ := s.Get("a1"); f {
		t.Fatal("a1 still flagged after Set(false)")
	}
	for _, id := range []string{"", "A1", "a1 ", "a10"} {
		if _, ok := s.Get(id); ok {
			t.Errorf("%q found", id)
		}
	}
}

// TestIDSetMatchesMap checks the set against a map over runs long enough to
// merge its recent ids into the sorted slice several times.
func TestIDSetMatchesMap(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var s IDSet
		want := map[string]bool{}
		n := rapid.IntRange(0, 3*idMergeAt).Draw(rt, "n")
		for i := range n {
			id := fmt.Sprintf("act-%d", rapid.IntRange(0, 2*idMergeAt).Draw(rt, fmt.Sprint("id", i)))
			flag := rapid.Bool().Draw(rt, fmt.Sprint("flag", i))
			s.Set(id, flag)
			want[id] = flag
		}
		if s.Len() != len(want) {
			rt.Fatalf("Len %d, want %d", s.Len(), len(want))
		}
		for i := range 2*idMergeAt + 1 {
			id := fmt.Sprintf("act-%d", i)
			wf, wok := want[id]
			if f, ok := s.Get(id); f != wf || ok != wok {
				rt.Fatalf("Get(%s) = %v, %v; want %v, %v", id, f, ok, wf, wok)
			}
		}
	})
}

func TestIDSetEqual(t *testing.T) {
	var a, b IDSet
	for i := range idMergeAt + 10 {
		a.Set(fmt.Sprint(i), i == 3)
	}
	for i := idMergeAt + 9; i >= 0; i-- { // merged at another point
		b.Set(fmt.Sprint(i), false)
	}
	if a.Equal(b) {
		t.Fatal("sets with different flags are equal")
	}
	b.Set("3", true)
	if !a.Equal(b) || !b.Equal(a) {
		t.Fatal("sets with the same ids and flags differ")
	}
	b.Set("x", false)
	if a.Equal(b) {
		t.Fatal("sets of different sizes are equal")
	}
}
