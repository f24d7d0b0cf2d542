package domain

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// jsonDecode is what encoding/json alone makes of data.
func jsonDecode[T any, PT interface {
	*T
	Payload
}](typ string, data []byte) (Payload, error) {
	return decodeInto[T, PT](typ, data)
}

// drawText draws a string: plain ids and words mostly, sometimes anything
// (quotes, backslashes, control characters, <>&, any rune), and then
// clears *plain.
func drawText(t *rapid.T, label string, plain *bool) string {
	if rapid.IntRange(0, 3).Draw(t, label+" kind") == 0 {
		*plain = false
		return rapid.String().Draw(t, label)
	}
	return rapid.StringMatching(`[a-zA-Z0-9 _:.é-]{0,12}`).Draw(t, label)
}

func drawTime(t *rapid.T) time.Time {
	at := time.Unix(rapid.Int64Range(-2e9, 4e9).Draw(t, "sec"), rapid.Int64Range(0, 999_999_999).Draw(t, "nsec"))
	switch rapid.IntRange(0, 2).Draw(t, "zone") {
	case 0:
		return at.UTC()
	case 1:
		return at.In(time.FixedZone("", rapid.IntRange(-14*3600, 14*3600).Draw(t, "offset")))
	}
	return at.Truncate(time.Second).UTC()
}

// TestFastPayloadsDecodeAsEncodingJSON: activities and sales decode as
// encoding/json decodes them, from the data json.Marshal writes and from
// that data with a byte changed, removed or added (then either both refuse
// it or both give the same payload).
func TestFastPayloadsDecodeAsEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var p Payload
		var typ string
		plain := true
		var slow func(string, []byte) (Payload, error)
		if rapid.Bool().Draw(t, "sale") {
			p = &SaleClosed{SaleID: drawText(t, "sale", &plain), MemberID: drawText(t, "member", &plain), Customer: drawText(t, "customer", &plain),
				AmountMinor: rapid.Int64().Draw(t, "amount"), Currency: drawText(t, "currency", &plain), OccurredAt: drawTime(t)}
			typ, slow = TypeSaleClosed, jsonDecode[SaleClosed]
		} else {
			p = &ActivityLogged{ActivityID: drawText(t, "activity", &plain), MemberID: drawText(t, "member", &plain), Kind: drawText(t, "kind", &plain),
				Quantity: rapid.Int64().Draw(t, "quantity"), Customer: drawText(t, "customer", &plain), Notes: drawText(t, "notes", &plain),
				OccurredAt: drawTime(t)}
			typ, slow = TypeActivityLogged, jsonDecode[ActivityLogged]
		}
		data, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		changed := rapid.Bool().Draw(t, "changed")
		if changed {
			i := rapid.IntRange(0, len(data)-1).Draw(t, "at")
			b := rapid.SampledFrom([]byte("{}[]\",:0123456789-.eE \\atn\"x\x01\xff")).Draw(t, "byte")
			switch rapid.IntRange(0, 4).Draw(t, "change") {
			case 0:
				data[i] = b
			case 1:
				data = append(data[:i:i], data[i+1:]...)
			case 2:
				data = append(data[:i:i], append([]byte{b}, data[i:]...)...)
			case 3: // after the end
				data = append(data, b)
			case 4: // before the number (a leading zero, a sign, a space)
				for _, key := range []string{`"quantity":`, `"amount_minor":`} {
					if k := bytes.Index(data, []byte(key)); k >= 0 {
						k += len(key)
						data = append(data[:k:k], append([]byte{b}, data[k:]...)...)
					}
				}
			}
		}
		// The data json.Marshal writes of plain strings takes the fast path.
		if plain && !changed {
			var fast bool
			if typ == TypeSaleClosed {
				_, fast = fastSaleClosed(data)
			} else {
				_, fast = fastActivityLogged(data)
			}
			if !fast {
				t.Fatalf("%s: not read by the fast path", data)
			}
		}
		want, wantErr := slow(typ, data)
		got, gotErr := DecodePayload(typ, data)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("%s: encoding/json: %v; DecodePayload: %v", data, wantErr, gotErr)
		}
		if wantErr == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("%s:\nencoding/json %#v\nDecodePayload %#v", data, want, got)
		}
	})
}

// BenchmarkDecodeActivity compares the fast path with encoding/json.
func BenchmarkDecodeActivity(b *testing.B) {
	data, err := json.Marshal(&ActivityLogged{ActivityID: "act-332840", MemberID: "m0354", Kind: "call", Quantity: 5,
		OccurredAt: time.Date(2026, 4, 28, 12, 44, 0, 0, time.UTC)})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodePayload(TypeActivityLogged, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		for b.Loop() {
			if _, err := jsonDecode[ActivityLogged](TypeActivityLogged, data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
