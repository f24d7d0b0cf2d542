package projections

import (
	"fmt"
	"testing"

	"perfledger/domain"
)

// The live subscriptions move through the log a few thousand events apart:
// every event of the last payloadCacheSlots, at consecutive positions of the
// embedded store, must still be in the cache.
func TestPayloadCacheHoldsAWindowOfConsecutivePositions(t *testing.T) {
	c := newPayloadCache(payloadCacheSlots)
	const from = 1_600_000
	for n := uint64(from); n < from+2*payloadCacheSlots; n++ {
		c.put(domain.Seq(n), fmt.Sprint(n), &domain.MemberLeft{MemberID: fmt.Sprint(n)})
	}
	misses := 0
	for n := uint64(from + payloadCacheSlots); n < from+2*payloadCacheSlots; n++ {
		pl, ok := c.get(domain.Seq(n), fmt.Sprint(n))
		if !ok || pl.(*domain.MemberLeft).MemberID != fmt.Sprint(n) {
			misses++
		}
	}
	if misses > 0 {
		t.Fatalf("%d of the last %d positions missing from the cache", misses, payloadCacheSlots)
	}
	if _, ok := c.get(domain.Seq(from), fmt.Sprint(from)); ok {
		t.Fatal("a position two windows back is still cached")
	}
}
