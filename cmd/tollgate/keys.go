package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

const keysUsage = `usage: tollgate keys <create|list|rotate|revoke> [flags]

  tollgate keys create --tenant T [--id ID] [--tier T] [--models a,b]
                       [--expires-in 720h | --expires-at 2027-01-01T00:00:00Z]
                       [--daily-usd N] [--monthly-usd N] [--rpm N] [--tpm N]
  tollgate keys list
  tollgate keys rotate ID
  tollgate keys revoke ID

Every subcommand takes --admin-url (default http://127.0.0.1:9090, the
extproc admin listener) and --token-env (default TOLLGATE_ADMIN_TOKEN: the
variable holding the admin token), and --json to print the API's answer.
create and rotate print the key's secret: it is shown this once.`

// keysClient calls the admin API of a running `tollgate extproc`.
type keysClient struct {
	base  string
	token string
	http  *http.Client
}

// runKeys: tollgate keys create|list|rotate|revoke
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, keysUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	adminURL := fs.String("admin-url", "http://127.0.0.1:9090", "base URL of the extproc admin listener")
	tokenEnv := fs.String("token-env", "TOLLGATE_ADMIN_TOKEN", "environment variable holding the admin token")
	asJSON := fs.Bool("json", false, "print the API's JSON answer")
	var spec createSpec
	if sub == "create" {
		fs.StringVar(&spec.ID, "id", "", "key id (default: a random vk-… id)")
		fs.StringVar(&spec.Tenant, "tenant", "", "tenant the key bills to (required)")
		fs.StringVar(&spec.Tier, "tier", "", "tier of tenants.tiers whose allow-list applies")
		fs.StringVar(&spec.models, "models", "", "comma-separated aliases the key may use (default: all its tier allows)")
		fs.StringVar(&spec.ExpiresIn, "expires-in", "", "lifetime, e.g. 720h")
		fs.StringVar(&spec.ExpiresAt, "expires-at", "", "expiry time, RFC 3339")
		fs.Float64Var(&spec.DailyUSD, "daily-usd", 0, "the key's own daily budget cap in USD (0: none)")
		fs.Float64Var(&spec.MonthlyUSD, "monthly-usd", 0, "the key's own monthly budget cap in USD (0: none)")
		fs.Int64Var(&spec.RPM, "rpm", 0, "the key's requests-per-minute limit (0: none)")
		fs.Int64Var(&spec.TPM, "tpm", 0, "the key's tokens-per-minute limit (0: none)")
	}
	// Flags may come before or after the key id.
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var id string
	if rest := fs.Args(); len(rest) > 0 {
		id = rest[0]
		if err := fs.Parse(rest[1:]); err != nil {
			return 2
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "tollgate keys %s: unexpected arguments %v\n", sub, fs.Args())
			return 2
		}
	}
	token := os.Getenv(*tokenEnv)
	if token == "" {
		fmt.Fprintf(stderr, "tollgate keys: the admin token variable %s is empty (set it, or name another with --token-env)\n", *tokenEnv)
		return 2
	}
	c := &keysClient{base: strings.TrimRight(*adminURL, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}

	var (
		raw []byte
		err error
	)
	switch sub {
	case "create":
		if id != "" {
			fmt.Fprintln(stderr, "tollgate keys create: give the id with --id")
			return 2
		}
		if spec.Tenant == "" {
			fmt.Fprintln(stderr, "tollgate keys create: --tenant is required")
			return 2
		}
		if spec.models != "" {
			spec.Models = strings.Split(spec.models, ",")
		}
		raw, err = c.do(ctx, http.MethodPost, "/v1/admin/keys", spec)
	case "list":
		raw, err = c.do(ctx, http.MethodGet, "/v1/admin/keys", nil)
	case "rotate", "revoke":
		if id == "" {
			fmt.Fprintf(stderr, "tollgate keys %s: the key id is required\n", sub)
			return 2
		}
		if sub == "rotate" {
			raw, err = c.do(ctx, http.MethodPost, "/v1/admin/keys/"+url.PathEscape(id)+"/rotate", nil)
		} else {
			raw, err = c.do(ctx, http.MethodDelete, "/v1/admin/keys/"+url.PathEscape(id), nil)
		}
	default:
		fmt.Fprintf(stderr, "tollgate keys: unknown subcommand %q\n\n%s\n", sub, keysUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "tollgate keys %s: %v\n", sub, err)
		return 1
	}
	if *asJSON {
		_, _ = stdout.Write(raw)
		return 0
	}
	if err := printKeys(stdout, sub, raw); err != nil {
		fmt.Fprintf(stderr, "tollgate keys %s: %v\n", sub, err)
		return 1
	}
	return 0
}

// createSpec is the body of POST /v1/admin/keys.
type createSpec struct {
	ID         string   `json:"id,omitempty"`
	Tenant     string   `json:"tenant"`
	Tier       string   `json:"tier,omitempty"`
	ExpiresAt  string   `json:"expires_at,omitempty"`
	ExpiresIn  string   `json:"expires_in,omitempty"`
	Models     []string `json:"models,omitempty"`
	DailyUSD   float64  `json:"daily_usd,omitempty"`
	MonthlyUSD float64  `json:"monthly_usd,omitempty"`
	RPM        int64    `json:"rpm,omitempty"`
	TPM        int64    `json:"tpm,omitempty"`
	models     string
}

func (c *keysClient) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Message string `json:"message"`
				Code    string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return nil, fmt.Errorf("%s (%s, HTTP %d)", e.Error.Message, e.Error.Code, resp.StatusCode)
		}
		if resp.StatusCode == http.StatusNotFound {
			return nil, errors.New("HTTP 404: the admin API is off on that server (set admin.token_sha256 or admin.token_env and keys.enabled)")
		}
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	return raw, nil
}

// keyOut is the part of the API's key view the table shows.
type keyOut struct {
	ID         string    `json:"id"`
	Tenant     string    `json:"tenant"`
	Tier       string    `json:"tier"`
	Status     string    `json:"status"`
	Expires    time.Time `json:"expires"`
	Models     []string  `json:"models"`
	DailyUSD   float64   `json:"daily_usd"`
	MonthlyUSD float64   `json:"monthly_usd"`
	RPM        int64     `json:"rpm"`
	TPM        int64     `json:"tpm"`
}

func printKeys(w io.Writer, sub string, raw []byte) error {
	switch sub {
	case "create", "rotate":
		var out struct {
			Key    keyOut `json:"key"`
			Secret string `json:"secret"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("bad answer: %w", err)
		}
		verb := "created"
		if sub == "rotate" {
			verb = "rotated"
		}
		fmt.Fprintf(w, "%s key %s for tenant %s\n", verb, out.Key.ID, out.Key.Tenant)
		fmt.Fprintf(w, "secret (shown once, store it now): %s\n", out.Secret)
	case "revoke":
		var k keyOut
		if err := json.Unmarshal(raw, &k); err != nil {
			return fmt.Errorf("bad answer: %w", err)
		}
		fmt.Fprintf(w, "revoked key %s (tenant %s)\n", k.ID, k.Tenant)
	case "list":
		var out struct {
			Data []keyOut `json:"data"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("bad answer: %w", err)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTENANT\tTIER\tSTATUS\tEXPIRES\tMODELS\tDAILY_USD\tMONTHLY_USD\tRPM\tTPM")
		for _, k := range out.Data {
			exp := "-"
			if !k.Expires.IsZero() {
				exp = k.Expires.Format(time.RFC3339)
			}
			models := strings.Join(k.Models, ",")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Tenant, dash(k.Tier), k.Status, exp, dash(models),
				num(k.DailyUSD), num(k.MonthlyUSD), num(float64(k.RPM)), num(float64(k.TPM)))
		}
		return tw.Flush()
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func num(f float64) string {
	if f == 0 {
		return "-"
	}
	return fmt.Sprintf("%g", f)
}
