package guard

import (
	"math"
	"strings"
)

// Context rules of the secrets detector: they need no provider prefix.
// A credential is recognised by where it stands (a command-line flag, an
// Authorization header, a key-like word just before it) and by how random
// it looks (Shannon entropy, character classes, class changes).

// scanFlags finds credentials passed as command-line flags separated by a
// space: `--token VALUE`, `-password VALUE`, `-u user:pass` (curl) and
// `-u user ... -p pass` pairs.
func scanFlags(text string, dst []Finding) []Finding {
	n := len(text)
	userS, userE := -1, -1
	lastNL, nlScan := -1, 0 // last line break before the current flag, found incrementally
	for off := 0; off < n; {
		i := strings.IndexByte(text[off:], '-')
		if i < 0 {
			break
		}
		p := off + i
		off = p + 1
		if p > 0 && text[p-1] != ' ' && text[p-1] != '\t' {
			continue
		}
		s := p + 1
		if s < n && text[s] == '-' {
			s++
		}
		e := s
		for e < n && e-s < 40 && (isAlnum(text[e]) || text[e] == '_' || text[e] == '-') {
			e++
		}
		if e == s || e >= n || text[e] != ' ' || !isAlpha(text[s]) {
			continue
		}
		name := text[s:e]
		v := e
		for v < n && text[v] == ' ' {
			v++
		}
		var quote byte
		if v < n && (text[v] == '"' || text[v] == '\'') {
			quote = text[v]
			v++
		}
		ve := valueEnd(text, v, quote)
		if quote != 0 && (ve >= n || text[ve] != quote) {
			continue
		}
		val := text[v:ve]
		if val == "" || val[0] == '-' {
			continue
		}
		for ; nlScan < p; nlScan++ {
			if text[nlScan] == '\n' {
				lastNL = nlScan
			}
		}
		sameLine := userS >= 0 && lastNL < userE
		switch strings.ToLower(name) {
		case "u", "user", "username":
			if c := strings.IndexByte(val, ':'); c > 0 && c < len(val)-1 && !strings.Contains(val, "://") && plausibleUser(val[:min(c, 64)]) && !strings.ContainsAny(val, "${}") {
				dst = append(dst, secret("BASIC_AUTH", v, ve, 0.8))
				off = ve
				continue
			}
			if plausibleUser(val) {
				userS, userE = v, ve
			}
			continue
		case "p":
			if sameLine && plausibleSecret(val, kwPassword, quote != 0) {
				dst = append(dst, secret("USERNAME", userS, userE, 0.6), secret("PASSWORD", v, ve, 0.75))
				userS = -1
				off = ve
			}
			continue
		}
		if len(name) < 3 {
			continue
		}
		kind := keyKind(name)
		if kind != kwPassword && kind != kwSecret || !plausibleSecret(val, kind, quote != 0) {
			continue
		}
		typ, score := "GENERIC_SECRET", 0.7
		if kind == kwPassword {
			typ, score = "PASSWORD", 0.75
			if sameLine {
				dst = append(dst, secret("USERNAME", userS, userE, 0.6))
				userS = -1
			}
		}
		dst = append(dst, secret(typ, v, ve, score))
		off = ve
	}
	return dst
}

// Thresholds of scanEntropy.
const (
	entropyMinContext = 16  // shortest token next to a key-like word
	entropyMinBare    = 24  // shortest token without context
	entropyMaxLen     = 200 // longer runs are blobs (images, payloads), not keys
	entropyContext    = 80  // bytes before a token searched for a key-like word
)

var entropyBytes = makeSet(alnums, "+/_-.~")

func isEntropyByte(c byte) bool { return entropyBytes.has(c) }

// scanEntropy reports random-looking tokens: next to a key-like word
// (key, token, secret, password, auth, bearer, credential, login, api,
// private, wallet) a token of 16+ bytes with letters and digits, entropy
// of at least 3.3 bits per byte and frequent class changes is a
// GENERIC_SECRET; without such a word a token needs 24+ bytes, lower and
// upper case and digits, 4 bits per byte and more class changes
// (HIGH_ENTROPY_STRING). Tokens inside findings of the other secrets rules
// (dst[base:]) are skipped.
func scanEntropy(text string, dst []Finding, base int) []Finding {
	n := len(text)
	for i := 0; i < n; {
		if !isEntropyByte(text[i]) {
			i++
			continue
		}
		s := i
		for i < n && isEntropyByte(text[i]) {
			i++
		}
		e := i
		for e < n && e-i < 2 && text[e] == '=' {
			e++ // base64 padding
		}
		for s < e && (text[s] == '.' || text[s] == '-' || text[s] == '/' || text[s] == '_') {
			s++
		}
		for e > s && (text[e-1] == '.' || text[e-1] == '-' || text[e-1] == '/' || text[e-1] == '_') {
			e--
		}
		if s+2 < e && text[s] == '0' && (text[s+1] == 'x' || text[s+1] == 'X') {
			s += 2
		}
		if e-s < entropyMinContext || e-s > entropyMaxLen || (s > 0 && (text[s-1] == '@' || text[s-1] == ':' && s > 1 && text[s-2] == '/')) {
			continue
		}
		if strings.IndexByte(text[s:e], '/') >= 0 && strings.Count(text[s:e], "/") > 1 {
			// A path or URL: judge each segment on its own.
			for a := s; a < e; {
				b := strings.IndexByte(text[a:e], '/')
				if b < 0 {
					b = e - a
				}
				dst = entropyToken(text, a, a+b, dst, base)
				a += b + 1
			}
			continue
		}
		dst = entropyToken(text, s, e, dst, base)
	}
	return dst
}

// entropyToken judges text[s:e] for scanEntropy.
func entropyToken(text string, s, e int, dst []Finding, base int) []Finding {
	l := e - s
	if l < entropyMinContext || l > entropyMaxLen {
		return dst
	}
	if !hasDigitAndLetter(text[s:e]) {
		return dst
	}
	st := tokenStats(text[s:e])
	for _, f := range dst[base:] {
		if f.Start < e && s < f.End {
			return dst
		}
	}
	if s >= 7 && text[s-7:s] == "base64," {
		return dst
	}
	// Hex strings have no words to find: letters a-f only, 3+ digits.
	random := st.changes*4 >= l && (st.wordy*3 <= st.letters || st.hex && st.digits >= 3)
	switch {
	case random && st.entropy >= 3.3 && keyContext(text, s):
		dst = append(dst, secret("GENERIC_SECRET", s, e, 0.6))
	case l >= entropyMinBare && st.lower && st.upper && st.entropy >= 4.2 && st.changes*3 >= l && st.wordy*10 <= st.letters*3 && st.slashes == 0 && st.dots == 0:
		dst = append(dst, secret("HIGH_ENTROPY_STRING", s, e, 0.5))
	}
	return dst
}

func hasDigitAndLetter(tok string) bool {
	d, l := false, false
	for i := 0; i < len(tok) && !(d && l); i++ {
		d = d || isDigit(tok[i])
		l = l || isAlpha(tok[i])
	}
	return d && l
}

type tokStats struct {
	lower, upper, digit, letter bool
	slashes, dots               int
	digits                      int
	hex                         bool // every letter is a-f or A-F
	letters                     int  // letters in the token
	wordy                       int  // letters in runs of 4+ of one case ("Valid", "alidate", "RISCV")
	changes                     int  // adjacent pairs whose class differs (lower, upper, digit)
	entropy                     float64
}

func tokenStats(tok string) tokStats {
	st := tokStats{hex: true}
	var counts [128]uint8
	prev, run := 0, 0
	for i := 0; i <= len(tok); i++ {
		if i == len(tok) {
			if run >= 4 {
				st.wordy += run
			}
			break
		}
		c := tok[i]
		counts[c&127]++
		cls := 0
		switch {
		case 'a' <= c && c <= 'z':
			st.lower, cls = true, 1
			st.hex = st.hex && c <= 'f'
		case 'A' <= c && c <= 'Z':
			st.upper, cls = true, 2
			st.hex = st.hex && c <= 'F'
		case isDigit(c):
			st.digit, cls = true, 3
			st.digits++
		case c == '/':
			st.slashes++
		case c == '.':
			st.dots++
		}
		if cls == 1 || cls == 2 {
			st.letters++
		}
		if cls != prev || cls == 3 || cls == 0 {
			carry := 0
			if prev == 2 && cls == 1 && run > 0 {
				carry, run = 1, run-1 // the capital starts a camel-case word
			}
			if run >= 4 {
				st.wordy += run
			}
			run = carry
		}
		if cls == 1 || cls == 2 {
			run++
		}
		if cls != 0 {
			if prev != 0 && cls != prev {
				st.changes++
			}
			prev = cls
		}
	}
	st.letter = st.lower || st.upper
	l := float64(len(tok))
	for _, k := range counts {
		if k != 0 {
			p := float64(k) / l
			st.entropy -= p * math.Log2(p)
		}
	}
	return st
}

// keyContext reports whether a key-like word occurs in the entropyContext
// bytes before s, within the current and two previous lines.
func keyContext(text string, s int) bool {
	from := max(0, s-entropyContext)
	nl := 0
	for j := s - 1; j >= from; j-- {
		if text[j] == '\n' {
			nl++
			if nl == 3 {
				from = j + 1
				break
			}
		}
	}
	w := text[from:s]
	for _, k := range [...]string{"key", "token", "secret", "passw", "pwd", "auth", "bearer", "credential", "login", "api", "private", "wallet"} {
		if containsFold(w, k) {
			return true
		}
	}
	return false
}

func isHostByte(c byte) bool { return isAlnum(c) || c == '.' || c == '-' || c == '_' }

// scanDotCom finds, in one pass over the ".com" occurrences, Google OAuth
// client ids `<digits>-<32 lower-case alphanumerics>.apps.googleusercontent.com`
// (GOOGLE_CLIENT_ID) and identifiers of cloud resources that reveal an
// account's layout (CLOUD_RESOURCE_ID; not credentials, but what a secret
// scanner is expected to keep out of third-party logs): S3 and Google
// Cloud Storage bucket hosts, `s3.amazonaws.com/<bucket>`, Shopify store
// domains; and AWS ARNs (`arn:aws…` with 5+ colons).
func scanDotCom(text string, dst []Finding) []Finding {
	for off := 0; off < len(text); {
		i := strings.Index(text[off:], ".com")
		if i < 0 {
			break
		}
		p := off + i // the '.' of ".com"
		off = p + 4
		head := text[:p]
		switch {
		case strings.HasSuffix(head, ".apps.googleusercontent"):
			e := p - len(".apps.googleusercontent")
			s := e
			for s > 0 && e-s < 32 && (isDigit(text[s-1]) || 'a' <= text[s-1] && text[s-1] <= 'z') {
				s--
			}
			if e-s != 32 || s == 0 || text[s-1] != '-' {
				continue
			}
			d := s - 1
			for d > 0 && isDigit(text[d-1]) {
				d--
			}
			if s-1-d >= 6 {
				dst = append(dst, secret("GOOGLE_CLIENT_ID", d, off, 0.8))
			}
		case strings.HasSuffix(head, "s3.amazonaws"):
			s := p - len("s3.amazonaws")
			if s > 0 && text[s-1] == '.' {
				dst = hostFinding(text, s-1, off, dst) // <bucket>.s3.amazonaws.com
				continue
			}
			e := off
			if e < len(text) && text[e] == '/' {
				e++
				for e < len(text) && e-s < 128 && isHostByte(text[e]) {
					e++
				}
				if e > off+1 {
					dst = append(dst, secret("CLOUD_RESOURCE_ID", s, e, 0.5)) // s3.amazonaws.com/<bucket>
				}
			}
		case strings.HasSuffix(head, ".storage.googleapis"):
			dst = hostFinding(text, p-len(".storage.googleapis"), off, dst)
		case strings.HasSuffix(head, ".myshopify"):
			dst = hostFinding(text, p-len(".myshopify"), off, dst)
		}
	}
	for off := 0; off < len(text); {
		i := strings.Index(text[off:], ":aws")
		if i < 0 {
			break
		}
		s := off + i - 3
		off += i + 4
		if s < 0 || text[s:s+3] != "arn" || s > 0 && isAlnum(text[s-1]) {
			continue
		}
		e := s
		for e < len(text) && text[e] > ' ' && text[e] != '"' && text[e] != '\'' && text[e] != ']' && text[e] != ',' && text[e] != '`' {
			e++
		}
		off = max(off, e)
		if strings.Count(text[s:e], ":") >= 5 {
			dst = append(dst, secret("CLOUD_RESOURCE_ID", s, e, 0.5))
		}
	}
	return dst
}

// hostFinding reports the host name ending with the suffix at dot..end,
// extended left over host bytes (the bucket or store name).
func hostFinding(text string, dot, end int, dst []Finding) []Finding {
	s := dot
	for s > 0 && dot-s < 128 && isHostByte(text[s-1]) {
		s--
	}
	if s < dot && isAlnum(text[s]) {
		dst = append(dst, secret("CLOUD_RESOURCE_ID", s, end, 0.5))
	}
	return dst
}

// scanKeyValueLines finds credentials written as `key value` lines without
// an operator: Groovy/Gradle DSL (`password "s3cret"`, quoted), netrc
// (`machine host login alice password s3cret`, unquoted, after a
// "machine" word), and XML settings (`<add key="SmtpPassword"
// value="s3cret"/>`). User names found this way are reported next to a
// password only.
func scanKeyValueLines(text string, dst []Finding) []Finding {
	netrc := hasNetrcMachine(text)
	userS, userE := -1, -1
	for ls := 0; ls < len(text); {
		le := strings.IndexByte(text[ls:], '\n')
		if le < 0 {
			le = len(text)
		} else {
			le += ls
		}
		line := text[ls:le]
		base := ls
		ls = le + 1
		netrcLine := netrc && isNetrcLine(line)
		if !netrcLine && strings.IndexByte(line, '"') < 0 && strings.IndexByte(line, '\'') < 0 {
			continue
		}
		// Words of the line: key value pairs.
		for i := 0; i < len(line); {
			for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
				i++
			}
			ks := i
			for i < len(line) && isNameByte(line[i]) {
				i++
			}
			key := line[ks:i]
			if key == "" {
				i++
				continue
			}
			if i >= len(line) || line[i] != ' ' {
				continue
			}
			v := i + 1
			var quote byte
			if v < len(line) && (line[v] == '"' || line[v] == '\'') && ks == len(line)-len(strings.TrimLeft(line, " \t")) && isDSLKey(key) {
				quote = line[v] // DSL: the statement starts the line
				v++
			} else if !netrcLine || !isNetrcKey(key) {
				continue
			}
			ve := valueEnd(line, v, quote)
			if quote != 0 && (ve >= len(line) || line[ve] != quote) {
				continue
			}
			kind := keyKind(key)
			if strings.EqualFold(key, "login") {
				kind = kwUser
			}
			val := line[v:ve]
			switch {
			case kind == kwUser && plausibleUser(val):
				userS, userE = base+v, base+ve
			case (kind == kwPassword || kind == kwSecret) && plausibleSecret(val, kind, quote != 0) && !looksLikeCode(val):
				if userS >= 0 && base+v-userE < userPairDistance {
					dst = append(dst, secret("USERNAME", userS, userE, 0.6))
					userS = -1
				}
				typ := "PASSWORD"
				if kind == kwSecret {
					typ = "GENERIC_SECRET"
				}
				dst = append(dst, secret(typ, base+v, base+ve, 0.7))
			}
			i = ve + 1
		}
	}
	return scanXMLSettings(text, dst)
}

// hasNetrcMachine reports a line that starts with "machine <host>".
func hasNetrcMachine(text string) bool {
	for off := 0; off < len(text); {
		i := strings.Index(text[off:], "machine ")
		if i < 0 {
			return false
		}
		p := off + i
		off = p + 8
		s := p
		for s > 0 && (text[s-1] == ' ' || text[s-1] == '\t') {
			s--
		}
		if s == 0 || text[s-1] == '\n' {
			return true
		}
	}
	return false
}

// isNetrcLine reports a line whose first word is a netrc keyword.
func isNetrcLine(line string) bool {
	line = strings.TrimLeft(line, " \t")
	for _, k := range [...]string{"machine ", "login ", "password ", "account ", "default "} {
		if strings.HasPrefix(line, k) {
			return true
		}
	}
	return false
}

func isNetrcKey(k string) bool { return k == "login" || k == "password" || k == "account" }

// isDSLKey reports the credential words a `key "value"` statement may use.
func isDSLKey(k string) bool {
	switch strings.ToLower(k) {
	case "password", "passwd", "pwd", "secret", "token", "apikey", "api_key", "username", "user", "login":
		return true
	}
	return false
}

// scanXMLSettings finds `key="<credential name>" value="<literal>"` in one
// tag (.NET appSettings and similar).
func scanXMLSettings(text string, dst []Finding) []Finding {
	for off := 0; off < len(text); {
		i := strings.Index(text[off:], "key=\"")
		if i < 0 {
			break
		}
		ks := off + i + 5
		off = ks
		ke := strings.IndexByte(text[ks:], '"')
		if ke < 0 || ke > 64 {
			continue
		}
		kind := keyKind(text[ks : ks+ke])
		if kind != kwPassword && kind != kwSecret {
			continue
		}
		rest := text[ks+ke+1 : min(len(text), ks+ke+1+64)]
		if t := strings.IndexByte(rest, '>'); t >= 0 {
			rest = rest[:t]
		}
		j := strings.Index(rest, "value=\"")
		if j < 0 {
			continue
		}
		v := ks + ke + 1 + j + 7
		e := strings.IndexByte(text[v:], '"')
		if e < 0 || !plausibleSecret(text[v:v+e], kind, true) {
			continue
		}
		typ := "PASSWORD"
		if kind == kwSecret {
			typ = "GENERIC_SECRET"
		}
		dst = append(dst, secret(typ, v, v+e, 0.7))
		off = v + e
	}
	return dst
}
