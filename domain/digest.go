package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Digest computes the ledger digest: a Merkle tree root (RFC 6962 shape:
// leaf = SHA-256(0x00 ‖ hash), node = SHA-256(0x01 ‖ left ‖ right), the
// left subtree holding the largest power of two of leaves) over the events'
// hashes in global order. An auditor writes the digest down with its position;
// recomputing it later proves that no event up to that position was altered,
// removed, reordered or inserted.
//
// Add events in global order; Root may be called at any time. It keeps
// O(log n) state, so it streams over any log. Not safe for concurrent use.
type Digest struct {
	stack []digestNode
	n     uint64
}

type digestNode struct {
	size uint64 // leaves under this node, a power of two
	sum  [32]byte
}

// Add appends an event hash (hex, as in Event.Hash) as the next leaf.
func (d *Digest) Add(eventHash string) error {
	raw, err := hex.DecodeString(eventHash)
	if err != nil || len(raw) != sha256.Size {
		return fmt.Errorf("digest: event hash %q is not a hex SHA-256", eventHash)
	}
	leaf := digestNode{size: 1, sum: sha256.Sum256(append([]byte{0}, raw...))}
	d.stack = append(d.stack, leaf)
	for len(d.stack) >= 2 {
		l, r := d.stack[len(d.stack)-2], d.stack[len(d.stack)-1]
		if l.size != r.size {
			break
		}
		d.stack = append(d.stack[:len(d.stack)-2], digestNode{size: l.size * 2, sum: merkleNode(l.sum, r.sum)})
	}
	d.n++
	return nil
}

// Count is the number of leaves added.
func (d *Digest) Count() uint64 { return d.n }

// Root returns the hex root; the root of an empty log is SHA-256 of nothing.
func (d *Digest) Root() string {
	if len(d.stack) == 0 {
		s := sha256.Sum256(nil)
		return hex.EncodeToString(s[:])
	}
	r := d.stack[len(d.stack)-1].sum
	for i := len(d.stack) - 2; i >= 0; i-- {
		r = merkleNode(d.stack[i].sum, r)
	}
	return hex.EncodeToString(r[:])
}

func merkleNode(l, r [32]byte) [32]byte {
	var b [65]byte
	b[0] = 1
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}
