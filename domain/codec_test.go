package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite the golden files of the current event versions")

func fx(s string) Fixed {
	v, err := ParseFixed(s)
	if err != nil {
		panic(err)
	}
	return v
}

func fxp(s string) *Fixed { v := fx(s); return &v }

// samplePayloads returns one fully populated payload of every event type.
func samplePayloads() []Payload {
	at := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	rules := DefaultScoringRules()
	rules.Version = 2
	rules.ActivityPoints = map[string]Fixed{"visit": fx("3"), "call": fx("1")}
	rules.RoleNormMultipliers = map[string]Fixed{"salesperson": fx("1")}
	rules.BonusBaseMinor = map[string]int64{"salesperson": 100000}
	return []Payload{
		&TeamFormed{TeamID: "t-1", Name: "Madrid Norte", Department: "sales", Region: "Madrid", ParentTeamID: "t-0"},
		&MemberJoined{MemberID: "m-1", DisplayName: "Ana Pérez", Role: "salesperson", TeamID: "t-1", JoinedOn: "2025-01-15"},
		&MemberTransferred{MemberID: "m-1", FromTeamID: "t-1", ToTeamID: "t-2", EffectiveOn: "2026-02-01"},
		&MemberLeft{MemberID: "m-1", LeftOn: "2026-12-31", Reason: "moved abroad"},
		&MemberProfileRecorded{MemberID: "m-1", Alg: ProfileAlg, Nonce: []byte("0123456789ab"), Ciphertext: []byte("sealed bytes")},
		&MemberForgotten{MemberID: "m-1", RequestedBy: "hr-1", Reason: "GDPR request"},
		&RoleLadderDefined{Roles: DefaultLadder()},
		&rules,
		&TargetSet{TargetID: "g-1", SubjectKind: "member", SubjectID: "m-1", KPI: "revenue", Period: "2026-11", Value: fx("80000")},
		&TargetRevised{TargetID: "g-1", NewValue: fx("75000"), Reason: "market slowdown", ApprovedBy: "m-9"},
		&ActivityLogged{ActivityID: "a-1", MemberID: "m-1", Kind: "visit", Quantity: 3, Customer: "ACME", Notes: "good lead", OccurredAt: at},
		&SaleClosed{SaleID: "s-1", MemberID: "m-1", Customer: "ACME", AmountMinor: 2600000, Currency: "EUR", OccurredAt: at},
		&ActivityVoided{ActivityID: "a-1", MemberID: "m-1", Reason: "duplicate"},
		&SaleReversed{SaleID: "s-1", MemberID: "m-1", Reason: "cancelled"},
		&QualityAssessed{MemberID: "m-1", Week: "2026-W47", Rating: 4, AssessorID: "m-9", Comment: "clear offers"},
		&ManagerRatingRecorded{MemberID: "m-1", Month: "2026-11", Rating: 4, RaterID: "m-9", Comment: "steady"},
		&EvaluationFinalized{MemberID: "m-1", Month: "2026-10", Components: EvaluationComponents{Objective: fxp("105"), Rollup: fxp("100.5425"), Manager: fxp("75")},
			Score: fx("100.217"), Band: 3, BandLabel: "meets", RulesVersion: 1, InputsDigest: "sha256:abcd", FinalizedBy: "m-9"},
		&PraiseGiven{FromID: "m-2", ToID: "m-1", Reason: "helped with the expo", LinkedEventID: "0190f3a2-0000-7000-8000-000000000001"},
		&AchievementPublicized{SubjectKind: "member", SubjectID: "m-1", Headline: "Best month ever", EvidenceEventIDs: []string{"e-1", "e-2"}, Audience: "company", PublicizedBy: "m-9"},
		&MeetingHeld{MeetingID: "mt-1", TeamID: "t-1", Kind: "experience_sharing", ChairID: "m-9", AttendeeIDs: []string{"m-1", "m-2"}, HeldAt: at, Topics: []string{"objections", "pricing"}},
		&SuggestionSubmitted{SuggestionID: "sg-1", AuthorID: "m-1", Title: "Shared CRM notes", Body: "Keep call notes in one place", Category: "process"},
		&SuggestionReviewed{SuggestionID: "sg-1", ReviewerID: "m-9", Decision: "adopt", Rationale: "cheap and useful"},
		&PromotionNominated{PromotionID: "p-1", MemberID: "m-1", FromRole: "salesperson", ToRole: "sales_supervisor", NominatedBy: "m-9", Justification: "leads the team informally", ProposedEffectiveOn: "2027-01-01"},
		&PromotionEligibilityEvaluated{PromotionID: "p-1", MemberID: "m-1", RulesVersion: 1, Criteria: []Criterion{{Code: "E1", Required: "≥ 12 months", Observed: "22 months", Passed: true}, {Code: "E2", Required: "≥ 100, none < 90", Observed: "98.5", Passed: false}}, Eligible: false},
		&PromotionApproved{PromotionID: "p-1", MemberID: "m-1", ApproverID: "hr-1", Comment: "ok", ExceptionJustification: "covering a vacancy"},
		&PromotionRejected{PromotionID: "p-2", MemberID: "m-1", ApproverID: "hr-1", Comment: "not yet"},
		&PromotionEffected{PromotionID: "p-1", MemberID: "m-1", FromRole: "salesperson", ToRole: "sales_supervisor", EffectiveOn: "2027-01-01"},
		&PromotionRescinded{PromotionID: "p-1", MemberID: "m-1", FromRole: "salesperson", ToRole: "sales_supervisor", Reason: "error in records", ApprovedBy: "hr-2"},
		&RewardGranted{RewardID: "r-1", MemberID: "m-1", Kind: "goal_bonus", AmountMinor: 107500, Currency: "EUR", Reason: "goal reached in 2026-10",
			Basis: RewardBasis{RuleID: "goal_bonus.v1", Inputs: map[string]string{"attainment": "1.05", "base": "1000.00"}, LinkedEventID: "0190f3a2-0000-7000-8000-000000000002"}, GrantedBy: "policy:goal-bonus"},
		&RewardRevoked{RewardID: "r-1", MemberID: "m-1", Reason: "clawback", AmountMinor: 20000, Currency: "EUR", Note: "sale s-1 reversed"},
	}
}

func TestSamplesCoverEveryEventType(t *testing.T) {
	var got []string
	for _, p := range samplePayloads() {
		got = append(got, p.EventType())
	}
	if diff := cmp.Diff(EventTypes(), got); diff != "" {
		t.Fatalf("samples do not cover every event type (-want +got):\n%s", diff)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, p := range samplePayloads() {
		t.Run(p.EventType(), func(t *testing.T) {
			typ, data, err := EncodePayload(p)
			if err != nil {
				t.Fatal(err)
			}
			if typ != p.EventType() {
				t.Errorf("type = %q, want %q", typ, p.EventType())
			}
			got, err := DecodePayload(typ, data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(p, got); diff != "" {
				t.Errorf("round trip changed the payload (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeAcceptsValuesAndPointers(t *testing.T) {
	v := TeamFormed{TeamID: "t-1", Name: "n", Department: "sales", Region: "r"}
	_, a, err := EncodePayload(v)
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := EncodePayload(&v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("value %s and pointer %s encode differently", a, b)
	}
}

func TestDecodeUnknownTypeIsErrUnknownEventType(t *testing.T) {
	for _, typ := range []string{"Nope.v1", "ActivityLogged.v9", "", "SaleClosed"} {
		_, err := DecodePayload(typ, []byte(`{}`))
		if !errors.Is(err, ErrUnknownEventType) {
			t.Errorf("DecodePayload(%q) error = %v, want ErrUnknownEventType", typ, err)
		}
	}
}

func TestDecodeMalformedJSONFails(t *testing.T) {
	_, err := DecodePayload(TypeActivityLogged, []byte(`{"quantity": "three"`))
	if err == nil || errors.Is(err, ErrUnknownEventType) {
		t.Fatalf("error = %v, want a decode error", err)
	}
}

// TestGoldenCurrentVersions keeps one golden file per CURRENT stored version
// (testdata/<Type>.vN.json): the sample must encode to exactly that JSON,
// so a change to a stored shape is noticed (and needs a new version and an
// upcaster). Run with -update to rewrite after adding a type.
func TestGoldenCurrentVersions(t *testing.T) {
	for _, p := range samplePayloads() {
		t.Run(p.EventType(), func(t *testing.T) {
			_, data, err := EncodePayload(p)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, data, "", "  "); err != nil {
				t.Fatal(err)
			}
			buf.WriteByte('\n')
			path := filepath.Join("testdata", p.EventType()+".json")
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGoldenCurrentVersions -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), buf.String()); diff != "" {
				t.Errorf("stored shape of %s changed (-golden +now):\n%s", p.EventType(), diff)
			}
			got, err := DecodePayload(p.EventType(), want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(p, got); diff != "" {
				t.Errorf("golden file decodes differently (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGoldenOldVersionsUpcast decodes every OLD stored version's golden file
// into the current struct.
func TestGoldenOldVersionsUpcast(t *testing.T) {
	at := time.Date(2025, 3, 14, 16, 0, 0, 0, time.UTC)
	tests := map[string]Payload{
		"SaleClosed.v1": &SaleClosed{SaleID: "s-legacy-1", MemberID: "m-1", Customer: "Ferretería López",
			AmountMinor: 123456, Currency: "EUR", OccurredAt: at}, // 1234.565 rounds half to even
	}
	for typ := range upcasters {
		if _, ok := tests[typ]; !ok {
			t.Errorf("upcaster %s has no golden test", typ)
		}
	}
	for typ, want := range tests {
		t.Run(typ, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", typ+".json"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodePayload(typ, data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("upcast (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMajorToMinor(t *testing.T) {
	tests := []struct {
		amount, currency string
		want             int64
	}{
		{"1234.5", "EUR", 123450},
		{"0.1", "EUR", 10},
		{"12.340000000000002", "EUR", 1234},
		{"0.125", "EUR", 12}, // half to even
		{"0.135", "EUR", 14}, // half to even
		{"-0.135", "EUR", -14},
		{"1500", "JPY", 1500},
		{"2.5", "JPY", 2},
		{"1.2345", "KWD", 1234},
		{"1e3", "USD", 100000},
	}
	for _, tt := range tests {
		got, err := majorToMinor(tt.amount, tt.currency)
		if err != nil {
			t.Errorf("majorToMinor(%s, %s): %v", tt.amount, tt.currency, err)
			continue
		}
		if got != tt.want {
			t.Errorf("majorToMinor(%s, %s) = %d, want %d", tt.amount, tt.currency, got, tt.want)
		}
	}
	for _, bad := range [][2]string{{"1", "XXX"}, {"abc", "EUR"}, {"1e30", "EUR"}} {
		if _, err := majorToMinor(bad[0], bad[1]); err == nil {
			t.Errorf("majorToMinor(%s, %s) succeeded, want an error", bad[0], bad[1])
		}
	}
}

func TestCurrencyCodes(t *testing.T) {
	for _, c := range []string{"EUR", "USD", "JPY", "GBP", "CHF", "KWD", "MXN", "BRL"} {
		if !IsCurrency(c) {
			t.Errorf("IsCurrency(%q) = false, want true", c)
		}
	}
	for _, c := range []string{"", "eur", "EURO", "ABC", "XXX", "XAU", "XTS", "QQQ"} {
		if IsCurrency(c) {
			t.Errorf("IsCurrency(%q) = true, want false", c)
		}
	}
}

func FuzzDecodePayload(f *testing.F) {
	for _, p := range samplePayloads() {
		typ, data, _ := EncodePayload(p)
		f.Add(typ, data)
	}
	f.Add("SaleClosed.v1", []byte(`{"amount": 12.5, "currency": "EUR"}`))
	f.Add("SaleClosed.v1", []byte(`{"amount": 1e400, "currency": "EUR"}`))
	f.Add("Nope.v1", []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		p, err := DecodePayload(typ, data)
		if err != nil {
			if p != nil {
				t.Fatalf("payload %v returned with error %v", p, err)
			}
			return
		}
		// Whatever decodes must re-encode and decode to the same value.
		typ2, data2, err := EncodePayload(p)
		if err != nil {
			t.Fatalf("re-encode %s: %v", typ, err)
		}
		if !strings.HasPrefix(typ2, strings.SplitN(typ, ".", 2)[0]+".") {
			t.Fatalf("decoded %s into %s", typ, typ2)
		}
		p2, err := DecodePayload(typ2, data2)
		if err != nil {
			t.Fatalf("decode re-encoded %s: %v", typ2, err)
		}
		// omitempty turns an empty map or slice into an absent one: same meaning.
		if diff := cmp.Diff(p, p2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("re-encoding changed the payload:\n%s", diff)
		}
	})
}
