package guard

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

type span struct{ Type, Value string }

func spans(text string, fs []Finding) []span {
	var out []span
	for _, f := range fs {
		out = append(out, span{f.Type, text[f.Start:f.End]})
	}
	return out
}

func TestPIIDetector(t *testing.T) {
	d := newPIIDetector()
	tests := []struct {
		name string
		text string
		want []span
	}{
		{"email", "write to Jane.Doe+x@mail.example.co.uk.", []span{{TypeEmail, "Jane.Doe+x@mail.example.co.uk"}}},
		{"email needs tld", "user@localhost and a@b.c", nil},
		{"card plain", "card 4111111111111111 ok", []span{{TypeCreditCard, "4111111111111111"}}},
		{"card spaced", "card 4111 1111 1111 1111.", []span{{TypeCreditCard, "4111 1111 1111 1111"}}},
		{"card dashed amex", "amex 3782-822463-10005", []span{{TypeCreditCard, "3782-822463-10005"}}},
		{"card luhn fails", "card 4111111111111112", nil},
		{"card in identifier", "order_4111111111111111", nil},
		{"ssn", "SSN 123-45-6780 on file", []span{{TypeSSN, "123-45-6780"}}},
		{"ssn bad area", "id 666-45-6789 and 900-12-1234 and 000-12-1234", nil},
		{"ssn bad group", "id 123-00-4567", nil},
		{"iban", "IBAN GB82 WEST 1234 5698 7654 32 please", []span{{TypeIBAN, "GB82 WEST 1234 5698 7654 32"}}},
		{"iban compact lower", "iban de89370400440532013000", []span{{TypeIBAN, "de89370400440532013000"}}},
		{"iban bad checksum", "GB83WEST12345698765432", nil},
		{"ipv4", "host 192.168.1.20 is up", []span{{TypeIPAddress, "192.168.1.20"}}},
		{"ipv4 out of range", "version 1.2.3.999 and 10.0.0", nil},
		{"ipv6", "addr 2001:db8::8a2e:370:7334 ok", []span{{TypeIPAddress, "2001:db8::8a2e:370:7334"}}},
		{"ipv6 not a time", "at 12:30:45 today, std::cout", nil},
		{"phone nanp", "call (415) 555-2671 now", []span{{TypePhone, "(415) 555-2671"}}},
		{"phone intl", "ring +44 20 7946 0958.", []span{{TypePhone, "+44 20 7946 0958"}}},
		{"phone extension", "tel 345-899-3560x4587", []span{{TypePhone, "345-899-3560x4587"}}},
		{"phone intl trunk", "mobile +46 (0)179 459 33 please", []span{{TypePhone, "+46 (0)179 459 33"}}},
		{"phone context after", "61 51 81 office", []span{{TypePhone, "61 51 81"}}},
		{"phone context before", "They're not answering at 78 651 450", []span{{TypePhone, "78 651 450"}}},
		{"phone dashed groups", "50-98-28-96-Office", []span{{TypePhone, "50-98-28-96"}}},
		{"not a phone: street number", "my new address is 224 4966 Bond Street", nil},
		{"not a phone: unit", "Apt. 722 20 40 rue Victor Hugo", nil},
		{"not a phone: licence", "My driver's license number is 425700624", nil},
		{"not a phone: postcode", "My zip code is 90010-170", nil},
		{"not a phone: offices", "Our offices are located at 9543 1819 St. John Street", nil},
		{"not a phone: date", "on 2023-01-15 12:00", nil},
		{"not a phone: math", "what is 12 + 7 * 3", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := spans(tt.text, d.Detect(tt.text, nil))
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestChecksums(t *testing.T) {
	assert.True(t, luhn([]byte("79927398713")))
	assert.False(t, luhn([]byte("79927398710")))
	assert.True(t, ibanChecksum([]byte("GB82WEST12345698765432")))
	assert.False(t, ibanChecksum([]byte("GB82WEST12345698765433")))
	assert.True(t, validSSN([]byte("001010001")))
	assert.False(t, validSSN([]byte("123456789")), "advertising number")
	assert.True(t, validIPv4("255.255.255.255"))
	assert.False(t, validIPv4("01.2.3.4"))
}

func FuzzPIIDetector(f *testing.F) {
	for _, s := range []string{"a@b.io 4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32", "+1-202-555-0143x12", "::1 fe80::1%eth0 1.2.3.4", "(((+", "123-45-6789"} {
		f.Add(s)
	}
	d := newPIIDetector()
	f.Fuzz(func(t *testing.T, text string) {
		checkDetector(t, d, text)
	})
}

// checkDetector asserts the invariants of checkFindings, that every finding
// has a type the detector lists (rules are validated against Types) and
// that Detect is deterministic and appends to dst without touching what it holds (the
// stream and the session reuse one slice for every detector).
func checkDetector(t *testing.T, d Detector, text string) {
	t.Helper()
	fs := d.Detect(text, nil)
	checkFindings(t, text, fs)
	types := map[string]bool{}
	for _, typ := range d.Types() {
		types[typ] = true
	}
	for _, f := range fs {
		if !types[f.Type] || f.Detector != d.Name() {
			t.Fatalf("finding %v: type not in Types() %v or detector not %q (a rule naming it would never apply)", f, d.Types(), d.Name())
		}
	}
	sentinel := Finding{Detector: "sentinel", Type: "SENTINEL", Start: -1, End: -1}
	again := d.Detect(text, []Finding{sentinel})
	if len(again) != len(fs)+1 || again[0] != sentinel {
		t.Fatalf("Detect with a non-empty dst changed it or found a different number: %v vs %v", again, fs)
	}
	for i := range fs {
		if fs[i] != again[i+1] {
			t.Fatalf("Detect is not deterministic: %v vs %v", fs, again[1:])
		}
	}
}

// checkFindings asserts invariants every detector must keep.
func checkFindings(t *testing.T, text string, fs []Finding) {
	t.Helper()
	for _, f := range fs {
		if f.Start < 0 || f.End > len(text) || f.Start >= f.End {
			t.Fatalf("finding %v out of bounds for %d bytes", f, len(text))
		}
		if f.Score <= 0 || f.Score > 1 {
			t.Fatalf("finding %v has score outside (0,1]", f)
		}
		if f.Type == "" || f.Detector == "" {
			t.Fatalf("finding %v lacks type or detector", f)
		}
	}
}
