package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors of Ring operations.
var (
	ErrExists   = errors.New("key id already exists")
	ErrNotFound = errors.New("key not found")
	ErrRevoked  = errors.New("key is revoked")
	ErrInvalid  = errors.New("invalid key")
)

// SecretPrefix starts every secret NewSecret makes, so that a leaked one is
// recognisable by secret scanners.
const SecretPrefix = "tgk-"

// Key is one virtual key. Only the hash of its secret is kept.
type Key struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Tier   string `json:"tier,omitempty"`
	// SHA256 is the hex SHA-256 of the secret.
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
	// Rotated is when the secret was last replaced (zero: never).
	Rotated time.Time `json:"rotated,omitzero"`
	// Expires is when the key stops authenticating (zero: never).
	Expires time.Time `json:"expires,omitzero"`
	// Revoked is when the key was revoked (zero: active).
	Revoked time.Time `json:"revoked,omitzero"`
	// Models, when non-empty, are the only aliases the key may name (within
	// what its tier allows).
	Models []string `json:"models,omitempty"`
	// DailyUSD and MonthlyUSD cap the key's own spend; zero = no cap of its
	// own (the tenant's caps still apply).
	DailyUSD   float64 `json:"daily_usd,omitempty"`
	MonthlyUSD float64 `json:"monthly_usd,omitempty"`
	// RPM and TPM are the key's rate limits; zero = none of its own.
	RPM int64 `json:"rpm,omitempty"`
	TPM int64 `json:"tpm,omitempty"`
}

// Active reports whether k authenticates at t.
func (k *Key) Active(t time.Time) bool {
	return k.Revoked.IsZero() && (k.Expires.IsZero() || t.Before(k.Expires))
}

// AllowsModel reports whether k may name alias (an empty list allows all).
func (k *Key) AllowsModel(alias string) bool {
	return len(k.Models) == 0 || slices.Contains(k.Models, alias)
}

// Capped reports whether k has a budget cap of its own.
func (k *Key) Capped() bool { return k.DailyUSD > 0 || k.MonthlyUSD > 0 }

// Validate reports every problem of k.
func (k *Key) Validate() error {
	var errs []error
	if !ValidID(k.ID) {
		errs = append(errs, fmt.Errorf("id must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}, got %q", k.ID))
	}
	if !validTenant(k.Tenant) {
		errs = append(errs, fmt.Errorf("tenant must match [A-Za-z0-9][A-Za-z0-9._:-]*, got %q", k.Tenant))
	}
	if b, err := hex.DecodeString(k.SHA256); err != nil || len(b) != sha256.Size {
		errs = append(errs, errors.New("sha256 must be 64 hex characters"))
	}
	if k.DailyUSD < 0 || k.MonthlyUSD < 0 {
		errs = append(errs, errors.New("daily_usd and monthly_usd must not be negative"))
	}
	if k.RPM < 0 || k.TPM < 0 {
		errs = append(errs, errors.New("rpm and tpm must not be negative"))
	}
	for _, m := range k.Models {
		if m == "" {
			errs = append(errs, errors.New("models must not contain an empty alias"))
			break
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// ValidID reports whether id is a usable key id: it is a metric label, a
// ledger account and a URL path segment.
func ValidID(id string) bool {
	if id == "" || len(id) > 64 || !alnum(id[0]) {
		return false
	}
	for i := 1; i < len(id); i++ {
		if c := id[i]; !alnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func validTenant(s string) bool {
	if s == "" || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '.' && c != '_' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// NewSecret returns a fresh random secret and its hex SHA-256.
func NewSecret() (secret, sum string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("random secret: %w", err)
	}
	secret = SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, Hash(secret), nil
}

// NewID returns a random key id, "vk-" and 12 hex digits.
func NewID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return "vk-" + hex.EncodeToString(b[:]), nil
}

// Hash is the hex SHA-256 of secret.
func Hash(secret string) string {
	s := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(s[:])
}

// sumOf decodes a hex SHA-256 (validated keys only).
func sumOf(hexSum string) ([32]byte, bool) {
	var s [32]byte
	b, err := hex.DecodeString(hexSum)
	if err != nil || len(b) != len(s) {
		return s, false
	}
	copy(s[:], b)
	return s, true
}
