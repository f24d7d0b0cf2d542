package memory_test

import (
	"errors"
	"fmt"
	"testing"

	"perfledger/adapters/memory"
	"perfledger/domain"
	"perfledger/domain/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(testing.TB) domain.EventStore { return memory.New(nil) }, storetest.Features{Dense: true})
}

func TestStoreContractShared(t *testing.T) {
	shared := memory.New(nil)
	storetest.Run(t, func(testing.TB) domain.EventStore { return shared }, storetest.Features{Dense: true})
}

func TestClosedStoreRefusesAppends(t *testing.T) {
	s := memory.New(nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(t.Context(), "s", domain.Any(), storetest.Events(1, 10))
	if !errors.Is(err, domain.ErrStoreClosed) {
		t.Errorf("err = %v, want ErrStoreClosed", err)
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			storetest.BenchAppend(b, memory.New(nil), writers)
		})
	}
}
