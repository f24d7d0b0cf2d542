package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
)

// mth is RFC 6962's recursive definition, the reference for the streaming Digest.
func mth(leaves [][]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return merkleNode(mth(leaves[:k]), mth(leaves[k:]))
}

func TestDigestMatchesRecursiveDefinition(t *testing.T) {
	var leaves [][]byte
	var d Digest
	for n := 0; n <= 70; n++ {
		want := mth(leaves)
		if got := d.Root(); got != hex.EncodeToString(want[:]) {
			t.Fatalf("%d leaves: root %s, want %x", n, got, want)
		}
		h := sha256.Sum256([]byte(fmt.Sprint(n)))
		leaves = append(leaves, h[:])
		if err := d.Add(hex.EncodeToString(h[:])); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDigestChangesWithOrderAndContent(t *testing.T) {
	h := func(s string) string { x := sha256.Sum256([]byte(s)); return hex.EncodeToString(x[:]) }
	root := func(hs ...string) string {
		var d Digest
		for _, x := range hs {
			if err := d.Add(x); err != nil {
				t.Fatal(err)
			}
		}
		return d.Root()
	}
	base := root(h("a"), h("b"), h("c"))
	for name, other := range map[string]string{
		"swapped":  root(h("a"), h("c"), h("b")),
		"removed":  root(h("a"), h("b")),
		"altered":  root(h("a"), h("B"), h("c")),
		"inserted": root(h("a"), h("b"), h("x"), h("c")),
	} {
		if other == base {
			t.Errorf("%s log has the same digest", name)
		}
	}
	var d Digest
	if err := d.Add("not-hex"); err == nil {
		t.Error("Add accepted a malformed hash")
	}
}
