package guard

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// byteSet is a set of bytes (bitmap).
type byteSet [4]uint64

func (s *byteSet) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }

func makeSet(groups ...string) byteSet {
	var s byteSet
	for _, g := range groups {
		for i := 0; i < len(g); i++ {
			c := g[i]
			s[c>>6] |= 1 << (c & 63)
		}
	}
	return s
}

const (
	lowers = "abcdefghijklmnopqrstuvwxyz"
	uppers = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digits = "0123456789"
	alnums = lowers + uppers + digits
)

// secretRule matches prefix followed by between min and max bytes of body.
type secretRule struct {
	prefix string
	typ    string
	body   *byteSet
	min    int
	max    int
	exact  bool // the body must not continue past max
	score  float64
	check  func(tok string) bool // optional extra validation of prefix+body
}

// secretsDetector finds credentials: provider keys by their documented
// prefixes, JWTs, PEM private-key blocks, passwords in URLs, and values
// assigned to key-like names (password=, api_key:, ...).
type secretsDetector struct {
	rules   []secretRule
	byFirst [256][]uint16 // first byte of prefix -> rule indices, longest prefix first
	second  [256]byteSet  // first byte -> set of second bytes of its prefixes
	sets    struct{ alnum, upperDigit, hex, lowerDigit, b64, b64url, token, dotted, crypt, path byteSet }
	types   []string
}

func newSecretsDetector() *secretsDetector {
	d := &secretsDetector{}
	d.sets.alnum = makeSet(alnums)
	d.sets.upperDigit = makeSet(uppers, digits)
	d.sets.hex = makeSet(digits, "abcdefABCDEF")
	d.sets.lowerDigit = makeSet(lowers, digits)
	d.sets.b64 = makeSet(alnums, "+/=")
	d.sets.b64url = makeSet(alnums, "-_=")
	d.sets.token = makeSet(alnums, "-_")
	d.sets.dotted = makeSet(alnums, "-_.")
	d.sets.crypt = makeSet(alnums, "./$=")
	d.sets.path = makeSet(alnums, "/_-")
	s := &d.sets
	r := func(prefix, typ string, body *byteSet, lo, hi int) secretRule {
		return secretRule{prefix: prefix, typ: typ, body: body, min: lo, max: hi, score: 0.95}
	}
	exact := func(x secretRule) secretRule { x.exact = true; return x }
	d.rules = []secretRule{
		// AWS access key ids: 4-letter prefix + 16 upper/digits.
		exact(r("AKIA", "AWS_ACCESS_KEY", &s.upperDigit, 16, 16)),
		exact(r("ASIA", "AWS_ACCESS_KEY", &s.upperDigit, 16, 16)),
		exact(r("AGPA", "AWS_ACCESS_KEY", &s.upperDigit, 16, 16)),
		exact(r("AIDA", "AWS_ACCESS_KEY", &s.upperDigit, 16, 16)),
		exact(r("AROA", "AWS_ACCESS_KEY", &s.upperDigit, 16, 16)),
		exact(r("AIPA", "AWS_ACCESS_KEY", &s.upperDigit, 16, 16)),
		exact(r("ANPA", "AWS_ACCESS_KEY", &s.upperDigit, 16, 16)),
		exact(r("ANVA", "AWS_ACCESS_KEY", &s.upperDigit, 16, 16)),
		exact(r("ABIA", "AWS_ACCESS_KEY", &s.upperDigit, 16, 16)),
		exact(r("ACCA", "AWS_ACCESS_KEY", &s.upperDigit, 16, 16)),
		exact(r("A3T", "AWS_ACCESS_KEY", &s.upperDigit, 17, 17)),
		r("da2-", "AWS_APPSYNC_KEY", &s.lowerDigit, 26, 26),
		// Google.
		exact(r("AIza", "GCP_API_KEY", &s.token, 35, 35)),
		r("ya29.", "GOOGLE_OAUTH_TOKEN", &s.token, 20, 2048),
		r("GOCSPX-", "GOOGLE_OAUTH_SECRET", &s.token, 20, 64),
		// GitHub.
		r("github_pat_", "GITHUB_TOKEN", &s.token, 50, 255),
		r("ghp_", "GITHUB_TOKEN", &s.alnum, 36, 255),
		r("gho_", "GITHUB_TOKEN", &s.alnum, 36, 255),
		r("ghu_", "GITHUB_TOKEN", &s.alnum, 36, 255),
		r("ghs_", "GITHUB_TOKEN", &s.dotted, 30, 2048),
		r("ghr_", "GITHUB_TOKEN", &s.alnum, 36, 255),
		// GitLab.
		r("glpat-", "GITLAB_TOKEN", &s.token, 20, 255),
		r("glptt-", "GITLAB_TOKEN", &s.token, 20, 255),
		r("gldt-", "GITLAB_TOKEN", &s.token, 20, 255),
		r("glrt-", "GITLAB_TOKEN", &s.token, 20, 255),
		r("glcbt-", "GITLAB_TOKEN", &s.token, 20, 255),
		r("glsoat-", "GITLAB_TOKEN", &s.token, 20, 255),
		r("GR1348941", "GITLAB_TOKEN", &s.token, 20, 255),
		// Slack.
		r("xoxb-", "SLACK_TOKEN", &s.token, 20, 255),
		r("xoxp-", "SLACK_TOKEN", &s.token, 20, 255),
		r("xoxa-", "SLACK_TOKEN", &s.token, 20, 255),
		r("xoxr-", "SLACK_TOKEN", &s.token, 20, 255),
		r("xoxs-", "SLACK_TOKEN", &s.token, 20, 255),
		r("xoxe-", "SLACK_TOKEN", &s.token, 20, 255),
		r("xoxe.xox", "SLACK_TOKEN", &s.token, 20, 255),
		r("xapp-", "SLACK_TOKEN", &s.b64, 20, 255),
		r("https://hooks.slack.com/services/", "SLACK_WEBHOOK", &s.path, 20, 255),
		r("https://hooks.slack.com/workflows/", "SLACK_WEBHOOK", &s.path, 20, 255),
		// Stripe.
		r("sk_live_", "STRIPE_KEY", &s.alnum, 16, 255),
		r("sk_test_", "STRIPE_KEY", &s.alnum, 16, 255),
		r("rk_live_", "STRIPE_KEY", &s.alnum, 16, 255),
		r("rk_test_", "STRIPE_KEY", &s.alnum, 16, 255),
		r("whsec_", "STRIPE_KEY", &s.alnum, 24, 255),
		// LLM providers.
		r("sk-ant-", "ANTHROPIC_API_KEY", &s.token, 32, 255),
		r("sk-proj-", "OPENAI_API_KEY", &s.token, 32, 255),
		r("sk-svcacct-", "OPENAI_API_KEY", &s.token, 32, 255),
		r("sk-admin-", "OPENAI_API_KEY", &s.token, 32, 255),
		r("sk-", "OPENAI_API_KEY", &s.token, 32, 255),
		r("gsk_", "GROQ_API_KEY", &s.alnum, 40, 64),
		r("xai-", "XAI_API_KEY", &s.alnum, 60, 100),
		r("hf_", "HUGGINGFACE_TOKEN", &s.alnum, 30, 64),
		r("tvly-", "TAVILY_API_KEY", &s.token, 24, 64),
		r("fc-", "FIRECRAWL_API_KEY", &s.hex, 32, 32),
		// Package registries and developer platforms.
		r("npm_", "NPM_TOKEN", &s.alnum, 36, 36),
		r("pypi-AgEIcHlwaS5vcmc", "PYPI_TOKEN", &s.token, 50, 512),
		r("dckr_pat_", "DOCKER_TOKEN", &s.token, 20, 64),
		r("dapi", "DATABRICKS_TOKEN", &s.hex, 32, 32),
		r("live_", "TWITCH_STREAM_KEY", &s.token, 30, 60),
		r("shpat_", "SHOPIFY_TOKEN", &s.alnum, 32, 64),
		r("shpca_", "SHOPIFY_TOKEN", &s.alnum, 32, 64),
		r("shppa_", "SHOPIFY_TOKEN", &s.alnum, 32, 64),
		r("shpss_", "SHOPIFY_TOKEN", &s.alnum, 32, 64),
		r("ntn_", "NOTION_TOKEN", &s.alnum, 40, 64),
		r("secret_", "NOTION_TOKEN", &s.alnum, 43, 43),
		r("figd_", "FIGMA_TOKEN", &s.token, 40, 64),
		r("vck_", "VERCEL_TOKEN", &s.alnum, 24, 64),
		r("vca_", "VERCEL_TOKEN", &s.alnum, 24, 64),
		r("vcr_", "VERCEL_TOKEN", &s.alnum, 24, 64),
		r("vci_", "VERCEL_TOKEN", &s.alnum, 24, 64),
		r("vcp_", "VERCEL_TOKEN", &s.alnum, 24, 64),
		r("cfat_", "CLOUDFLARE_TOKEN", &s.alnum, 40, 64),
		r("cfk_", "CLOUDFLARE_TOKEN", &s.alnum, 40, 64),
		r("cfut_", "CLOUDFLARE_TOKEN", &s.alnum, 40, 64),
		r("glc_", "GRAFANA_TOKEN", &s.b64, 32, 512),
		r("glsa_", "GRAFANA_TOKEN", &s.token, 32, 64),
		r("eyJrIjoi", "GRAFANA_TOKEN", &s.b64, 40, 256),
		r("hvs.", "VAULT_TOKEN", &s.token, 24, 255),
		r("hvb.", "VAULT_TOKEN", &s.token, 24, 255),
		r("hvr.", "VAULT_TOKEN", &s.token, 24, 255),
		r("dp.ct.", "DOPPLER_TOKEN", &s.alnum, 40, 44),
		r("dp.pt.", "DOPPLER_TOKEN", &s.alnum, 40, 44),
		r("dp.st.", "DOPPLER_TOKEN", &s.dotted, 40, 60),
		r("dp.sa.", "DOPPLER_TOKEN", &s.alnum, 40, 44),
		r("dp.scim.", "DOPPLER_TOKEN", &s.alnum, 40, 44),
		r("NRAK-", "NEW_RELIC_KEY", &s.upperDigit, 27, 27),
		r("NRII-", "NEW_RELIC_KEY", &s.token, 32, 32),
		r("NRIQ-", "NEW_RELIC_KEY", &s.token, 32, 32),
		r("NRRA-", "NEW_RELIC_KEY", &s.hex, 42, 42),
		r("PMAK-", "POSTMAN_KEY", &s.token, 59, 59),
		r("sq0atp-", "SQUARE_TOKEN", &s.token, 22, 60),
		r("sq0csp-", "SQUARE_TOKEN", &s.token, 40, 60),
		r("EAAA", "SQUARE_TOKEN", &s.token, 60, 60),
		r("doo_v1_", "DIGITALOCEAN_TOKEN", &s.hex, 64, 64),
		r("dop_v1_", "DIGITALOCEAN_TOKEN", &s.hex, 64, 64),
		r("dor_v1_", "DIGITALOCEAN_TOKEN", &s.hex, 64, 64),
		r("tskey-", "TAILSCALE_KEY", &s.token, 30, 80),
		r("AGE-SECRET-KEY-1", "AGE_SECRET_KEY", &s.upperDigit, 58, 58),
		r("ATATT3", "ATLASSIAN_TOKEN", &s.b64url, 100, 300),
		r("AKCp", "ARTIFACTORY_KEY", &s.alnum, 60, 80),
		r("odt_", "DEPENDENCY_TRACK_KEY", &s.alnum, 32, 40),
		r("sgp_", "SOURCEGRAPH_TOKEN", &s.token, 40, 80),
		r("SG.", "SENDGRID_KEY", &s.dotted, 60, 80),
		r("EAACEdEose0cBA", "FACEBOOK_TOKEN", &s.alnum, 20, 255),
		r("sl.", "DROPBOX_TOKEN", &s.token, 120, 1024),
		r("dt0c01.", "DYNATRACE_TOKEN", &s.dotted, 80, 100),
		r("django-insecure-", "DJANGO_SECRET_KEY", &s.crypt, 30, 100),
		r("oy2", "NUGET_KEY", &s.lowerDigit, 43, 43),
		r("px-dep-", "NEW_RELIC_KEY", &s.token, 36, 36),
		r("sk.eyJ", "MAPBOX_TOKEN", &s.dotted, 50, 300),
		r("hawk.", "STACKHAWK_KEY", &s.dotted, 30, 60),
		// Password hashes.
		r("$2a$", "PASSWORD_HASH", &s.crypt, 56, 56),
		r("$2b$", "PASSWORD_HASH", &s.crypt, 56, 56),
		r("$2y$", "PASSWORD_HASH", &s.crypt, 56, 56),
		r("$5$", "PASSWORD_HASH", &s.crypt, 40, 120),
		r("$6$", "PASSWORD_HASH", &s.crypt, 80, 140),
		r("$8$", "PASSWORD_HASH", &s.crypt, 50, 80),
		r("$krb5asrep$", "PASSWORD_HASH", &s.crypt, 60, 2048),
		r("$krb5tgs$", "PASSWORD_HASH", &s.crypt, 60, 4096),
		// Private keys encoded in base64 (PEM header or OpenSSH magic).
		r("LS0tLS1CRUdJTi", "PRIVATE_KEY", &s.b64, 40, 8192),
		r("b3BlbnNzaC1rZXktdjE", "PRIVATE_KEY", &s.b64, 40, 8192),
	}
	jwt := r("eyJ", "JWT", &s.dotted, 20, 8192)
	jwt.check = validJWT
	basic := r("Basic ", "BASIC_AUTH", &s.b64, 8, 512)
	basic.check = validBasicAuth
	d.rules = append(d.rules, jwt, basic)
	for i := range d.rules {
		if d.rules[i].typ == "PASSWORD_HASH" {
			d.rules[i].score = 0.9
		}
	}
	// Index by first byte, longest prefix first so "sk-ant-" wins over "sk-".
	seen := map[string]bool{}
	for i, ru := range d.rules {
		c := ru.prefix[0]
		d.byFirst[c] = append(d.byFirst[c], uint16(i))
		d.second[c][ru.prefix[1]>>6] |= 1 << (ru.prefix[1] & 63)
		if !seen[ru.typ] {
			seen[ru.typ] = true
			d.types = append(d.types, ru.typ)
		}
	}
	for c := range d.byFirst {
		idx := d.byFirst[c]
		for a := 1; a < len(idx); a++ {
			for b := a; b > 0 && len(d.rules[idx[b]].prefix) > len(d.rules[idx[b-1]].prefix); b-- {
				idx[b], idx[b-1] = idx[b-1], idx[b]
			}
		}
	}
	for _, t := range []string{"PRIVATE_KEY", "URL_CREDENTIALS", "PASSWORD", "GENERIC_SECRET", "BASIC_AUTH", "CONNECTION_STRING", "USERNAME", "GOOGLE_CLIENT_ID", "HIGH_ENTROPY_STRING", "CLOUD_RESOURCE_ID"} {
		if !seen[t] {
			d.types = append(d.types, t)
		}
	}
	return d
}

func (*secretsDetector) Name() string { return DetectorSecrets }

func (d *secretsDetector) Types() []string { return d.types }

func secret(typ string, start, end int, score float64) Finding {
	return Finding{Detector: DetectorSecrets, Type: typ, Start: start, End: end, Score: score}
}

func (d *secretsDetector) Detect(text string, dst []Finding) []Finding {
	base := len(dst)
	dst = d.scanPrefixes(text, dst)
	dst = scanPrivateKeys(text, dst)
	dst = scanURLCredentials(text, dst)
	dst = d.scanAssignments(text, dst)
	dst = scanPasswordIs(text, dst)
	dst = scanFlags(text, dst)
	dst = scanKeyValueLines(text, dst)
	dst = scanDotCom(text, dst)
	dst = scanEntropy(text, dst, base)
	return dst
}

// scanPasswordIs finds prose like `the password is 'hunter22'` (the value
// must be quoted).
func scanPasswordIs(text string, dst []Finding) []Finding {
	const marker = "assword is "
	for off := 0; off < len(text); {
		i := strings.Index(text[off:], marker)
		if i < 0 {
			break
		}
		v := off + i + len(marker)
		off = v
		if v >= len(text) || (text[v] != '\'' && text[v] != '"') {
			continue
		}
		q := text[v]
		e := strings.IndexByte(text[v+1:], q)
		if e < 0 || e > 128 {
			continue
		}
		val := text[v+1 : v+1+e]
		if strings.ContainsAny(val, " \n") || !plausibleSecret(val, kwPassword, true) {
			continue
		}
		dst = append(dst, secret("PASSWORD", v+1, v+1+e, 0.7))
		off = v + 1 + e
	}
	return dst
}

func (d *secretsDetector) scanPrefixes(text string, dst []Finding) []Finding {
	n := len(text)
	for i := 0; i < n; i++ {
		c := text[i]
		if i+1 >= n || !d.second[c].has(text[i+1]) || (i > 0 && isAlnum(text[i-1])) {
			continue
		}
		cands := d.byFirst[c]
		for _, ri := range cands {
			ru := &d.rules[ri]
			if !strings.HasPrefix(text[i:], ru.prefix) {
				continue
			}
			j := i + len(ru.prefix)
			lim := min(n, j+ru.max)
			for j < lim && ru.body.has(text[j]) {
				j++
			}
			for j > i+len(ru.prefix) && (text[j-1] == '.' || text[j-1] == '=' && ru.body != &d.sets.b64 && ru.body != &d.sets.b64url) {
				j-- // a trailing sentence dot is not part of the token
			}
			body := j - i - len(ru.prefix)
			if body < ru.min || (ru.exact && j < n && ru.body.has(text[j])) {
				continue
			}
			if j < n && isAlnum(text[j]) && !ru.exact {
				continue // ran into max: not this token
			}
			if ru.check != nil && !ru.check(text[i:j]) {
				continue
			}
			dst = append(dst, secret(ru.typ, i, j, ru.score))
			i = j - 1
			break
		}
	}
	return dst
}

// validJWT requires three dot-separated base64url segments, the first two
// at least 10 bytes (the signature may be empty for alg "none").
func validJWT(tok string) bool {
	a := strings.IndexByte(tok, '.')
	if a < 10 {
		return false
	}
	b := strings.IndexByte(tok[a+1:], '.')
	if b < 10 {
		return false
	}
	return strings.IndexByte(tok[a+1+b+1:], '.') < 0
}

// validBasicAuth accepts "Basic <base64>" whose payload decodes to
// "user:password".
func validBasicAuth(tok string) bool {
	b64 := strings.TrimRight(tok[len("Basic "):], "=")
	var buf [384]byte
	if base64.RawStdEncoding.DecodedLen(len(b64)) > len(buf) {
		return false
	}
	n, err := base64.RawStdEncoding.Decode(buf[:], []byte(b64))
	if err != nil {
		return false
	}
	colon := bytes.IndexByte(buf[:n], ':')
	if colon <= 0 || colon == n-1 {
		return false
	}
	for _, c := range buf[:n] {
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// scanPrivateKeys finds PEM blocks "-----BEGIN ... PRIVATE KEY-----" up to
// the matching END line; a block without its END line runs to the end of
// the text (so a stream holds it back until it completes).
func scanPrivateKeys(text string, dst []Finding) []Finding {
	for off := 0; off < len(text); {
		i := strings.Index(text[off:], "-----BEGIN ")
		if i < 0 {
			break
		}
		s := off + i
		hdrEnd := strings.Index(text[s+11:min(len(text), s+11+48)], "-----")
		if hdrEnd < 0 {
			if len(text)-s < 11+48 { // header may still be arriving
				if strings.Contains(text[s:], "\n") {
					off = s + 11
					continue
				}
				return append(dst, secret("PRIVATE_KEY", s, len(text), 0.5))
			}
			off = s + 11
			continue
		}
		label := text[s+11 : s+11+hdrEnd]
		if !strings.HasSuffix(label, "PRIVATE KEY") && !strings.HasSuffix(label, "PRIVATE KEY BLOCK") {
			off = s + 11
			continue
		}
		e := len(text)
		if k := strings.Index(text[s:], "-----END "); k >= 0 {
			if m := strings.Index(text[s+k+9:], "-----"); m >= 0 {
				e = s + k + 9 + m + 5
			}
		}
		dst = append(dst, secret("PRIVATE_KEY", s, e, 1))
		off = e
	}
	return dst
}

// scanURLCredentials finds "scheme://user:password@host" and reports the
// user:password part.
func scanURLCredentials(text string, dst []Finding) []Finding {
	for off := 0; off < len(text); {
		i := strings.Index(text[off:], "://")
		if i < 0 {
			break
		}
		p := off + i
		off = p + 3
		if p == 0 || !isAlpha(text[p-1]) {
			continue
		}
		s := p + 3
		e := s
		colon := -1
		for e < len(text) {
			c := text[e]
			if c == '@' || c == '/' || c == ' ' || c == '\n' || c == '\t' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '?' || c == '#' {
				break
			}
			if c == ':' && colon < 0 {
				colon = e
			}
			e++
		}
		if e >= len(text) || text[e] != '@' || colon <= s || colon+1 >= e || e+1 >= len(text) || !isAlnum(text[e+1]) {
			continue
		}
		dst = append(dst, secret("URL_CREDENTIALS", s, e, 0.9))
		off = e + 1
	}
	return dst
}

// keyword classes for scanAssignments.
const (
	kwNone = iota
	kwPassword
	kwSecret
	kwUser // a user name: reported only next to a password or secret
)

// keyKind classifies an assignment target name by the words it contains:
// pass/pwd -> password; secret, token (not "tokens"), credential, or "key"
// together with api/access/private/auth/account/sign/encrypt/master/client
// -> secret. One pass over the name finds the anchor words.
func keyKind(name string) int {
	var buf [32]byte
	if len(name) > len(buf) {
		name = name[len(name)-len(buf):]
	}
	low := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	key := false
	for i := 0; i < len(low); i++ {
		rest := low[i:]
		switch low[i] {
		case 'p':
			if bytes.HasPrefix(rest, []byte("pass")) && !bytes.HasPrefix(rest, []byte("passport")) || bytes.HasPrefix(rest, []byte("pwd")) {
				return kwPassword
			}
		case 's':
			if bytes.HasPrefix(rest, []byte("secret")) {
				return kwSecret
			}
		case 't':
			if bytes.HasPrefix(rest, []byte("token")) && !bytes.HasPrefix(rest, []byte("tokens")) && !bytes.HasPrefix(rest, []byte("tokeniz")) {
				return kwSecret
			}
		case 'c':
			if bytes.HasPrefix(rest, []byte("credential")) {
				return kwSecret
			}
		case 'k':
			if bytes.HasPrefix(rest, []byte("key")) {
				key = true
			}
		case 'a':
			if bytes.HasPrefix(rest, []byte("authorization")) {
				return kwSecret
			}
		}
	}
	if hasSegment(low, "pat") {
		return kwSecret // personal access token: GITHUB_PAT, ado_pat
	}
	if !key {
		for _, u := range [...]string{"user", "username", "usr", "login", "uid", "userid", "accountname", "clientid"} {
			if lastSegment(low, u) {
				return kwUser
			}
		}
		return kwNone
	}
	for _, q := range [...]string{"api", "access", "private", "auth", "account", "sign", "encrypt", "master", "client"} {
		if bytes.Contains(low, []byte(q)) {
			return kwSecret
		}
	}
	return kwNone
}

// hasSegment reports whether the lower-case name contains word as a whole
// segment (delimited by the start, the end or a non-letter).
func hasSegment(low []byte, word string) bool {
	for i := 0; i+len(word) <= len(low); i++ {
		if string(low[i:i+len(word)]) == word && (i == 0 || !isAlpha(low[i-1])) && (i+len(word) == len(low) || !isAlpha(low[i+len(word)])) {
			return true
		}
	}
	return false
}

// lastSegment reports whether the lower-case name ends with word once
// separators are dropped ("REACT_APP_AUTH_USERNAME", "user_id", "User Id").
func lastSegment(low []byte, word string) bool {
	j := len(word)
	i := len(low) - 1
	for ; i >= 0 && j > 0; i-- {
		c := low[i]
		if c == '_' || c == '-' || c == '.' || c == ' ' {
			continue
		}
		j--
		if c != word[j] {
			return false
		}
	}
	return j == 0 && (i < 0 || !isAlpha(low[i]))
}

func isNameByte(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }

// scanAssignments finds `name = value`, `name: value`, `"name": "value"`
// and `name => value` where name looks like a credential, and reports the
// value. Password values need 6 bytes; other secrets 12 bytes and at least
// two character classes or 20 bytes. Placeholders and template references
// are skipped. A value inside a `;`-separated connection string
// (`Server=h;User Id=u;Password=p`) widens to the whole string
// (CONNECTION_STRING). A user name (`user: alice`) is reported only when a
// password or secret is assigned within userPairDistance bytes of it.
func (d *secretsDetector) scanAssignments(text string, dst []Finding) []Finding {
	n := len(text)
	var users [8]struct{ s, e int }
	nu := 0
	lastSecret := -1 << 30 // end of the last password/secret value
	base := len(dst)
	for p := 0; p < n; p++ {
		c := text[p]
		if c != '=' && c != ':' {
			continue
		}
		if c == ':' && p+2 < n && text[p+1] == '/' && text[p+2] == '/' {
			continue
		}
		// Name before the operator.
		k := p
		for k > 0 && p-k < 40 && (text[k-1] == ' ' || text[k-1] == '\t') {
			k--
		}
		for q := 0; q < 2 && k > 0 && (text[k-1] == '"' || text[k-1] == '\'' || text[k-1] == ']'); q++ {
			k--
		}
		if c == '=' && k > 0 && (text[k-1] == ':' || text[k-1] == '!' || text[k-1] == '=' || text[k-1] == '<' || text[k-1] == '>') {
			if text[k-1] == '=' && k == p {
				continue // second byte of "==": handled at the first
			}
			if text[k-1] != ':' {
				continue
			}
			k--
		}
		e := k
		for k > 0 && isNameByte(text[k-1]) && e-k < 64 {
			k--
		}
		if k == e {
			continue
		}
		kind := keyKind(text[k:e])
		if kind == kwNone {
			continue
		}
		// Value after the operator.
		v := p + 1
		compare := v < n && text[v] == '=' && c == '='
		if v < n && (text[v] == '>' || text[v] == '=') {
			v++
		}
		for v < n && (text[v] == ' ' || text[v] == '\t') {
			v++
		}
		v = skipAuthScheme(text, v)
		var quote byte
		if v < n && (text[v] == '"' || text[v] == '\'' || text[v] == '`') {
			quote = text[v]
			v++
		}
		ve := valueEnd(text, v, quote)
		if quote != 0 && (ve >= n || text[ve] != quote) {
			continue
		}
		val := text[v:ve]
		if kind == kwUser {
			if plausibleUser(val) && quote == 0 && containsFold(text[k:e], "auth") && !looksLikeCode(val) {
				dst = append(dst, secret("USERNAME", v, ve, 0.6)) // AUTH_USER=alice
				continue
			}
			if plausibleUser(val) && nu < len(users) {
				users[nu] = struct{ s, e int }{v, ve}
				nu++
			}
			continue
		}
		cs, ce, conn := connectionString(text, k, ve)
		if !plausibleSecret(val, kind, quote != 0) || quote == 0 && !conn && (compare || looksLikeCode(val)) {
			continue
		}
		typ, score := "GENERIC_SECRET", 0.7
		if kind == kwPassword {
			typ, score = "PASSWORD", 0.75
		}
		f := secret(typ, v, ve, score)
		if conn {
			f = secret("CONNECTION_STRING", cs, ce, 0.85)
		}
		dst = append(dst, f)
		lastSecret = ve
		p = max(ve, f.End)
	}
	if nu == 0 || lastSecret < 0 {
		return dst
	}
	for _, u := range users[:nu] {
		near := false
		for _, f := range dst[base:] {
			if f.Start <= u.s && u.e <= f.End {
				near = false // inside a connection string already reported
				break
			}
			if f.Start-u.e < userPairDistance && u.s-f.End < userPairDistance {
				near = true
			}
		}
		if near {
			dst = append(dst, secret("USERNAME", u.s, u.e, 0.6))
		}
	}
	return dst
}

// userPairDistance is how close (bytes) a user name must be to a password
// or secret to be reported as the other half of a credential pair.
const userPairDistance = 200

// skipAuthScheme skips an HTTP authentication scheme word ("Bearer ",
// "Token ", "Basic ", "Digest ", "ApiKey ") at v.
func skipAuthScheme(text string, v int) int {
	for _, s := range [...]string{"Bearer ", "bearer ", "Token ", "token ", "Basic ", "Digest ", "ApiKey ", "Apikey "} {
		if strings.HasPrefix(text[v:], s) {
			v += len(s)
			for v < len(text) && text[v] == ' ' {
				v++
			}
			return v
		}
	}
	return v
}

// valueEnd returns the end of an assigned value starting at v: the closing
// quote (or end of line) for quoted values, else the first delimiter.
func valueEnd(text string, v int, quote byte) int {
	ve := v
	for ve < len(text) && ve-v < 256 {
		b := text[ve]
		if quote != 0 {
			if b == quote || b == '\n' {
				break
			}
		} else if b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == ',' || b == ';' || b == '"' || b == '\'' || b == ')' || b == '}' || b == ']' || b == '&' || b == '<' || b == '>' {
			break
		}
		ve++
	}
	return ve
}

// plausibleUser accepts a literal user name: 2-64 bytes, no template or
// variable syntax.
func plausibleUser(v string) bool {
	if len(v) < 2 || len(v) > 64 {
		return false
	}
	switch v[0] {
	case '$', '{', '<', '%', '[', '*', '#', '&', '/', '@', '(':
		return false
	}
	return !strings.ContainsAny(v, "(){}$")
}

// connectionString reports the `;`-separated key=value string around the
// assignment name at k and value end ve, when there is one: at least two
// `;` and three `=` between the enclosing quotes or line ends.
func connectionString(text string, k, ve int) (int, int, bool) {
	s := k
	for s > 0 && k-s < 512 && !isStringEdge(text[s-1]) {
		s--
	}
	e := ve
	for e < len(text) && e-ve < 512 && !isStringEdge(text[e]) {
		e++
	}
	seg := text[s:e]
	if strings.Count(seg, ";") < 2 || strings.Count(seg, "=") < 3 {
		return 0, 0, false
	}
	for s < e && text[s] == ' ' {
		s++
	}
	for e > s && (text[e-1] == ' ' || text[e-1] == ';') {
		e--
	}
	return s, e, true
}

func isStringEdge(c byte) bool { return c == '"' || c == '\'' || c == '`' || c == '\n' || c == '\r' }

func plausibleSecret(v string, kind int, quoted bool) bool {
	need := 12
	if kind == kwPassword {
		need = 6
	}
	if len(v) < need {
		return false
	}
	if !quoted && strings.ContainsAny(v, "()") || strings.HasSuffix(v, ":") {
		return false // an expression or a label, not a literal
	}
	if strings.HasPrefix(v, "env.") || strings.HasPrefix(v, "process.env") || strings.HasPrefix(v, "os.environ") {
		return false // a reference to the environment
	}
	if kind == kwPassword && (strings.EqualFold(v, "password") || strings.EqualFold(v, "passwd") || isConstName(v) && containsFold(v, "password")) {
		return false // "password", "DB_PASSWORD": a placeholder or a constant's name
	}
	switch v[0] {
	case '$', '{', '<', '%', '[', '*', '#', '&', '/', '@':
		return false // template reference, placeholder or masked value
	}
	if strings.Contains(v, "***") || strings.Contains(v, "...") || strings.Contains(v, "xxxx") || strings.Contains(v, "XXXX") {
		return false
	}
	var lower, upperC, digit, other bool
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z':
			lower = true
		case 'A' <= c && c <= 'Z':
			upperC = true
		case isDigit(c):
			digit = true
		default:
			other = true
		}
	}
	if digit && !lower && !upperC && !other {
		return false // a number (port, count, id)
	}
	if kind == kwPassword {
		return true
	}
	classes := 0
	for _, b := range []bool{lower, upperC, digit, other} {
		if b {
			classes++
		}
	}
	return classes >= 2 || len(v) >= 20
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring ASCII case, without allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for ; j < len(sub); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

// looksLikeCode reports an unquoted value that reads as a program
// identifier rather than a literal: a dotted selector (`cfg.Token`,
// `ssa.OpAMD64X`), an upper-case constant (`STANDARD_RIGHTS`) or a
// camel-case name without digits (`encryptionKey`).
func looksLikeCode(v string) bool {
	if isConstName(v) && strings.IndexByte(v, '_') >= 0 {
		return true
	}
	dotted, seg := false, 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '.':
			if seg == 0 || i+1 == len(v) || !isAlpha(v[i+1]) && v[i+1] != '_' {
				return false
			}
			dotted, seg = true, 0
		case isAlpha(c) || c == '_' || isDigit(c) && seg > 0:
			seg++
		default:
			return false
		}
	}
	if dotted {
		return true
	}
	st := tokenStats(v)
	return !st.digit && st.lower && st.upper && st.wordy*3 > st.letters*2 && strings.IndexByte(v, '_') < 0
}

// isConstName reports an upper-case identifier such as DB_PASSWORD.
func isConstName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isUpper(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}
