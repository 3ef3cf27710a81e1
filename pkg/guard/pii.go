package guard

import (
	"net/netip"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// piiDetector finds e-mail addresses, phone numbers, payment card numbers,
// US social security numbers, IBANs and IP addresses. Every candidate is
// validated (Luhn, SSN ranges, IBAN mod-97, phone metadata, address syntax).
type piiDetector struct {
	// phoneRegions are the default regions tried for numbers written
	// without a country code.
	phoneRegions []string
}

func newPIIDetector() *piiDetector {
	return &piiDetector{phoneRegions: []string{"US", "GB", "DE", "FR", "IT", "ES", "NL", "SE", "AU", "IN", "CA", "BR"}}
}

func (*piiDetector) Name() string { return DetectorPII }

func (*piiDetector) Types() []string {
	return []string{TypeEmail, TypePhone, TypeCreditCard, TypeSSN, TypeIBAN, TypeIPAddress}
}

func (d *piiDetector) Detect(text string, dst []Finding) []Finding {
	dst = scanEmails(text, dst)
	dst = d.scanNumbers(text, dst)
	dst = scanIBANs(text, dst)
	dst = scanIPv6(text, dst)
	return dst
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }
func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

func pii(typ string, start, end int, score float64) Finding {
	return Finding{Detector: DetectorPII, Type: typ, Start: start, End: end, Score: score}
}

// ---- e-mail ----

func isEmailLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func isDomainByte(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

func scanEmails(text string, dst []Finding) []Finding {
	for off := 0; off < len(text); {
		i := strings.IndexByte(text[off:], '@')
		if i < 0 {
			break
		}
		at := off + i
		off = at + 1
		s := at
		for s > 0 && isEmailLocal(text[s-1]) {
			s--
		}
		for s < at && text[s] == '.' {
			s++
		}
		if s == at {
			continue
		}
		e := at + 1
		for e < len(text) && isDomainByte(text[e]) {
			e++
		}
		for e > at+1 && (text[e-1] == '.' || text[e-1] == '-') {
			e--
		}
		dot := strings.LastIndexByte(text[at+1:e], '.')
		if dot <= 0 {
			continue
		}
		tld := text[at+1+dot+1 : e]
		if len(tld) < 2 || !allAlpha(tld) || text[at+1] == '.' || text[at+1] == '-' {
			continue
		}
		dst = append(dst, pii(TypeEmail, s, e, 0.99))
		off = e
	}
	return dst
}

func allAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlpha(s[i]) {
			return false
		}
	}
	return true
}

// ---- digit runs: IPv4, SSN, payment cards, phones ----

func isNumSep(c byte) bool { return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' }

// scanNumbers finds runs of digits joined by single separators (space,
// dash, dot, parentheses), optionally led by '+' or '(', and classifies
// each run.
func (d *piiDetector) scanNumbers(text string, dst []Finding) []Finding {
	n := len(text)
	for i := 0; i < n; i++ {
		c := text[i]
		start := i
		switch {
		case isDigit(c):
		case (c == '+' || c == '(') && i+1 < n && isDigit(text[i+1]):
		default:
			continue
		}
		if start > 0 && (isAlnum(text[start-1]) || text[start-1] == '.' || text[start-1] == '_' || text[start-1] == '/' || text[start-1] == '-' && start > 1 && isAlnum(text[start-2])) {
			// inside a word, a decimal, a path or an identifier: skip the run
			for i < n && (isAlnum(text[i]) || text[i] == '.' || text[i] == '-') {
				i++
			}
			continue
		}
		j := start + 1
		for j < n {
			b := text[j]
			if isDigit(b) {
				j++
				continue
			}
			if isNumSep(b) && j+1 < n && (isDigit(text[j+1]) || (b != '(' && text[j+1] == '(') || (b == ')' && text[j+1] == ' ' && j+2 < n && isDigit(text[j+2]))) {
				j++
				continue
			}
			break
		}
		end := j
		for end > start && !isDigit(text[end-1]) {
			end--
		}
		i = j - 1
		if end <= start {
			continue
		}
		// Extension "x1234" directly after the number (phones only).
		ext := end
		if ext+1 < n && (text[ext] == 'x' || text[ext] == 'X') && isDigit(text[ext+1]) {
			ext++
			for ext < n && isDigit(text[ext]) {
				ext++
			}
		}
		if ext < n && (isAlpha(text[ext]) || text[ext] == '_' || (text[ext] == '.' || text[ext] == '-') && ext+1 < n && isDigit(text[ext+1])) {
			continue // followed by a letter or more identifier: not a number we classify
		}
		if f, ok := d.classifyNumber(text, start, end, ext); ok {
			dst = append(dst, f)
			i = f.End - 1
		}
	}
	return dst
}

func (d *piiDetector) classifyNumber(text string, start, end, ext int) (Finding, bool) {
	s := text[start:end]
	var digits [24]byte
	nd := 0
	var seps [4]int // ' ', '-', '.', other
	for k := 0; k < len(s); k++ {
		c := s[k]
		switch {
		case isDigit(c):
			if nd < len(digits) {
				digits[nd] = c
			}
			nd++
		case c == ' ':
			seps[0]++
		case c == '-':
			seps[1]++
		case c == '.':
			seps[2]++
		default:
			seps[3]++
		}
	}
	if nd > len(digits) {
		return Finding{}, false
	}
	dg := digits[:nd]
	if ext == end {
		if seps[2] == 3 && seps[0]+seps[1]+seps[3] == 0 && validIPv4(s) {
			return pii(TypeIPAddress, start, end, 0.95), true
		}
		if nd == 9 && len(s) == 11 && s[3] == '-' && s[6] == '-' {
			if validSSN(dg) {
				return pii(TypeSSN, start, end, 0.9), true
			}
			return Finding{}, false // SSN-shaped but invalid: not a phone either
		}
		if nd >= 12 && nd <= 19 && seps[2]+seps[3] == 0 && (seps[0] == 0 || seps[1] == 0) && cardGroups(s) && validCardPrefix(dg) && luhn(dg) {
			return pii(TypeCreditCard, start, end, 0.95), true
		}
	}
	if nd >= 6 && nd <= 15 && !looksLikeDate(s) && d.phone(text, start, ext, nd, seps) {
		return pii(TypePhone, start, ext, 0.8), true
	}
	return Finding{}, false
}

// cardGroups accepts a card number written without separators or in groups
// of at least 3 digits.
func cardGroups(s string) bool {
	run := 0
	for k := 0; k < len(s); k++ {
		if isDigit(s[k]) {
			run++
			continue
		}
		if run < 3 {
			return false
		}
		run = 0
	}
	return run >= 3
}

func validIPv4(s string) bool {
	parts := 0
	val, nd := 0, 0
	for k := 0; k <= len(s); k++ {
		if k == len(s) || s[k] == '.' {
			if nd == 0 || nd > 3 || val > 255 || (nd > 1 && s[k-nd] == '0') {
				return false
			}
			parts++
			val, nd = 0, 0
			continue
		}
		val = val*10 + int(s[k]-'0')
		nd++
	}
	return parts == 4
}

// validSSN checks the area (001-899 except 666), group (01-99) and serial
// (0001-9999) of a US SSN, and rejects well-known advertising numbers.
func validSSN(d []byte) bool {
	area := int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0')
	group := int(d[3]-'0')*10 + int(d[4]-'0')
	serial := int(d[5]-'0')*1000 + int(d[6]-'0')*100 + int(d[7]-'0')*10 + int(d[8]-'0')
	if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
		return false
	}
	s := string(d)
	return s != "123456789" && s != "078051120" && s != "219099999"
}

// validCardPrefix accepts the issuer ranges of the major schemes (Visa 4,
// Mastercard 51-55 and 2221-2720, Amex 34/37, Discover 6011/64/65,
// JCB 35, Diners 30/36/38, UnionPay 62, Maestro 50/56-69).
func validCardPrefix(d []byte) bool {
	switch d[0] {
	case '4':
		return len(d) == 13 || len(d) == 16 || len(d) == 19
	case '5':
		return true
	case '6':
		return true
	case '3':
		switch d[1] {
		case '4', '7':
			return len(d) == 15
		case '0', '5', '6', '8':
			return len(d) >= 14
		}
		return false
	case '2':
		p := int(d[0]-'0')*1000 + int(d[1]-'0')*100 + int(d[2]-'0')*10 + int(d[3]-'0')
		return (p >= 2221 && p <= 2720 && len(d) == 16) || (p == 2131 && len(d) == 15)
	case '1':
		return string(d[:4]) == "1800" && len(d) == 15
	}
	return false
}

func luhn(d []byte) bool {
	sum := 0
	double := false
	for k := len(d) - 1; k >= 0; k-- {
		v := int(d[k] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// phone decides whether the digit run text[start:ext] is a phone number.
// A leading '+' (or 00) is trusted when the number is possible for its
// country code (an optional "(0)" trunk prefix is ignored). A word such as
// "phone", "call", "fax" or "office" on the same line (phoneContext) admits
// any separated run of 6+ digits; a run directly followed by another word
// (a street name: "224 4966 Bond Street") or preceded by "Apt."/"Suite"/
// "zip" is not a phone without such a word, and neither is a run of only
// two space-separated groups. Everything else goes to validPhone.
func (d *piiDetector) phone(text string, start, ext, nd int, seps [4]int) bool {
	s := text[start:ext]
	separated := seps[0]+seps[1]+seps[2]+seps[3] > 0
	if nanpShape(s) {
		return true
	}
	if s[0] == '+' || strings.HasPrefix(s, "00") {
		return possibleInternational(s)
	}
	ctx, neg := phoneContext(text, start, ext)
	if neg && !ctx {
		return false
	}
	if ctx {
		return separated || nd >= 7 && nd <= 12
	}
	if nd < 7 || wordFollows(text, ext) {
		return false
	}
	if seps[0] == 1 && seps[1]+seps[2]+seps[3] == 0 {
		return false // "224 4966": two groups are too ambiguous without context
	}
	return d.validPhone(s, nd, separated)
}

// possibleInternational parses an international number (+CC or 00CC),
// dropping a "(0)" trunk prefix, and checks its length for the country.
func possibleInternational(s string) bool {
	var buf [40]byte
	b := buf[:0]
	if strings.HasPrefix(s, "00") {
		b = append(b, '+')
		s = s[2:]
	}
	for k := 0; k < len(s) && len(b) < len(buf); k++ {
		if strings.HasPrefix(s[k:], "(0)") {
			k += 2
			continue
		}
		b = append(b, s[k])
	}
	num, err := phonenumbers.Parse(string(b), "ZZ")
	return err == nil && phonenumbers.IsPossibleNumber(num) && (phonenumbers.IsValidNumber(num) || len(phonenumbers.GetNationalSignificantNumber(num)) >= 8)
}

// phoneContext looks for phone words on the same line, up to 40 bytes
// before and 24 bytes after the number (ctx), and for address or postcode
// words just before it (neg).
func phoneContext(text string, start, end int) (ctx, neg bool) {
	a := start
	for a > 0 && start-a < 40 && text[a-1] != '\n' {
		a--
	}
	b := end
	for b < len(text) && b-end < 24 && text[b] != '\n' {
		b++
	}
	// A trailing '.' asks for a word end after the match ("office" but not
	// "offices"); every word must start at a word boundary.
	for _, w := range [...]string{"phone", "tel.", "call", "fax", "mobile", "cell.", "office.", "dial", "contact", "reach", "sms.", "whatsapp", "answer", "ring.", "landline", "hotline"} {
		if hasWord(text[a:start], w) || hasWord(text[end:b], w) {
			ctx = true
			break
		}
	}
	near := text[max(a, start-24):start]
	for _, w := range [...]string{"apt", "suite", "unit", "box", "zip", "postal", "postcode", "floor", "license", "licence", "passport", "account", "order", "invoice"} {
		if containsFold(near, w) {
			neg = true
			break
		}
	}
	return ctx, neg
}

// hasWord reports whether s contains w (ASCII case-insensitive) starting
// at a word boundary; a trailing '.' in w also asks for a boundary after.
func hasWord(s, w string) bool {
	end := strings.HasSuffix(w, ".")
	w = strings.TrimSuffix(w, ".")
	for i := 0; i+len(w) <= len(s); i++ {
		if i > 0 && isAlpha(s[i-1]) || !containsFold(s[i:i+len(w)], w) {
			continue
		}
		if !end || i+len(w) == len(s) || !isAlpha(s[i+len(w)]) {
			return true
		}
	}
	return false
}

// wordFollows reports a letter word right after the number (one space or
// none between), as in a street address.
func wordFollows(text string, end int) bool {
	if end < len(text) && text[end] == ' ' {
		end++
	}
	return end < len(text) && (isAlpha(text[end]) || text[end] >= 0x80)
}

// validPhone checks a candidate with libphonenumber metadata: numbers with
// a leading '+' are parsed as international; others must be valid in one
// of the default regions. Bare digit runs without separators must be a
// valid 10- or 11-digit NANP number.
func (d *piiDetector) validPhone(s string, nd int, separated bool) bool {
	if nanpShape(s) {
		return true
	}
	if strings.HasPrefix(s, "00") {
		num, err := phonenumbers.Parse("+"+s[2:], "ZZ")
		return err == nil && phonenumbers.IsValidNumber(num)
	}
	if s[0] == '+' {
		num, err := phonenumbers.Parse(s, "ZZ")
		return err == nil && phonenumbers.IsValidNumber(num)
	}
	if !separated {
		if nd != 10 && nd != 11 {
			return false
		}
		num, err := phonenumbers.Parse(s, "US")
		return err == nil && phonenumbers.IsValidNumber(num)
	}
	for _, r := range d.phoneRegions {
		num, err := phonenumbers.Parse(s, r)
		if err == nil && phonenumbers.IsValidNumberForRegion(num, r) {
			return true
		}
	}
	return false
}

// looksLikeDate reports a leading ISO date (yyyy-mm-dd, yyyy.mm.dd,
// yyyy/mm/dd) with a plausible year.
func looksLikeDate(s string) bool {
	if len(s) < 10 || !(s[:2] == "19" || s[:2] == "20") {
		return false
	}
	sep := s[4]
	return (sep == '-' || sep == '.' || sep == '/') && s[7] == sep &&
		isDigit(s[2]) && isDigit(s[3]) && isDigit(s[5]) && isDigit(s[6]) && isDigit(s[8]) && isDigit(s[9])
}

// nanpShape accepts the common North American formats regardless of
// number-plan validity: [+1-|1-|001-]ddd-ddd-dddd, (ddd)ddd-dddd,
// (ddd) ddd-dddd, ddd.ddd.dddd and ddd ddd dddd, with an optional xNNNN
// extension.
func nanpShape(s string) bool {
	if x := strings.IndexAny(s, "xX"); x > 0 {
		s = s[:x]
	}
	for _, p := range [...]string{"+1-", "+1 ", "+1.", "001-", "1-"} {
		if strings.HasPrefix(s, p) {
			s = s[len(p):]
			break
		}
	}
	digitsAt := func(s string, idx ...int) bool {
		for _, k := range idx {
			if !isDigit(s[k]) {
				return false
			}
		}
		return true
	}
	switch len(s) {
	case 12: // ddd-ddd-dddd
		return (s[3] == '-' && s[7] == '-' || s[3] == '.' && s[7] == '.' || s[3] == ' ' && s[7] == ' ') &&
			digitsAt(s, 0, 1, 2, 4, 5, 6, 8, 9, 10, 11)
	case 13: // (ddd)ddd-dddd
		return s[0] == '(' && s[4] == ')' && s[8] == '-' && digitsAt(s, 1, 2, 3, 5, 6, 7, 9, 10, 11, 12)
	case 14: // (ddd) ddd-dddd
		return s[0] == '(' && s[4] == ')' && s[5] == ' ' && s[9] == '-' && digitsAt(s, 1, 2, 3, 6, 7, 8, 10, 11, 12, 13)
	}
	return false
}

// ---- IBAN ----

// ibanLength is the IBAN length per country (ISO 13616 registry).
func ibanLength(cc string) int {
	switch cc {
	case "NO":
		return 15
	case "BE":
		return 16
	case "DK", "FI", "FO", "GL", "NL":
		return 18
	case "MK", "SI":
		return 19
	case "AT", "BA", "EE", "KZ", "LT", "LU", "XK":
		return 20
	case "CH", "CR", "HR", "LI", "LV":
		return 21
	case "BG", "BH", "DE", "GB", "GE", "IE", "ME", "RS", "VA":
		return 22
	case "AE", "GI", "IL", "IQ", "TL":
		return 23
	case "AD", "CZ", "ES", "MD", "PK", "RO", "SA", "SE", "SK", "TN", "VG":
		return 24
	case "PT", "ST":
		return 25
	case "IS", "TR":
		return 26
	case "FR", "GR", "IT", "MC", "MR", "SM":
		return 27
	case "AL", "AZ", "BY", "CY", "DO", "GT", "HU", "LB", "PL", "SV":
		return 28
	case "BR", "EG", "PS", "QA", "UA":
		return 29
	case "JO", "KW", "MU":
		return 30
	case "MT", "SC":
		return 31
	case "LC":
		return 32
	}
	return 0
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

func scanIBANs(text string, dst []Finding) []Finding {
	n := len(text)
	for i := 0; i+15 <= n; i++ {
		if !isAlpha(text[i]) || !isAlpha(text[i+1]) || !isDigit(text[i+2]) || !isDigit(text[i+3]) || (i > 0 && isAlnum(text[i-1])) {
			continue
		}
		cc := [2]byte{upper(text[i]), upper(text[i+1])}
		want := ibanLength(string(cc[:]))
		if want == 0 {
			continue
		}
		var buf [34]byte
		k, j := 0, i
		for j < n && k < want {
			c := text[j]
			if isAlnum(c) {
				buf[k] = upper(c)
				k++
				j++
				continue
			}
			if c == ' ' && j+1 < n && isAlnum(text[j+1]) && k%4 == 0 {
				j++
				continue
			}
			break
		}
		if k != want || (j < n && isAlnum(text[j])) || !ibanChecksum(buf[:k]) {
			continue
		}
		dst = append(dst, pii(TypeIBAN, i, j, 0.95))
		i = j - 1
	}
	return dst
}

// ibanChecksum computes the ISO 7064 mod-97 check over the rearranged IBAN.
func ibanChecksum(b []byte) bool {
	rem := 0
	add := func(c byte) bool {
		switch {
		case isDigit(c):
			rem = (rem*10 + int(c-'0')) % 97
		case isUpper(c):
			v := int(c-'A') + 10
			rem = (rem*100 + v) % 97
		default:
			return false
		}
		return true
	}
	for _, c := range b[4:] {
		if !add(c) {
			return false
		}
	}
	for _, c := range b[:4] {
		if !add(c) {
			return false
		}
	}
	return rem == 1
}

// ---- IPv6 ----

func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func scanIPv6(text string, dst []Finding) []Finding {
	for off := 0; off < len(text); {
		i := strings.IndexByte(text[off:], ':')
		if i < 0 {
			break
		}
		p := off + i
		s := p
		for s > 0 && (isHex(text[s-1]) || text[s-1] == ':') {
			s--
		}
		e := p
		for e < len(text) && (isHex(text[e]) || text[e] == ':' || text[e] == '.') {
			e++
		}
		for e > p && text[e-1] == '.' {
			e--
		}
		off = e + 1
		if (s > 0 && (isAlnum(text[s-1]) || text[s-1] == '_')) || (e < len(text) && (isAlnum(text[e]) || text[e] == '_')) {
			continue
		}
		cand := text[s:e]
		if strings.Count(cand, ":") < 2 || groupsV6(cand) < 3 {
			continue
		}
		if a, err := netip.ParseAddr(cand); err == nil && a.Is6() {
			dst = append(dst, pii(TypeIPAddress, s, e, 0.9))
		}
	}
	return dst
}

func groupsV6(s string) int {
	g := 0
	in := false
	for k := 0; k < len(s); k++ {
		if s[k] == ':' {
			in = false
			continue
		}
		if !in {
			g++
			in = true
		}
	}
	return g
}
