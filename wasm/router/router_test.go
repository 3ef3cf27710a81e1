package router_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/wasm/router"
)

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := router.ParseConfig([]byte(`{"keys":[{"sha256":"x","key_id":"","tenant":"a b","tier":"gold"}],
		"canaries":[{"alias":"m","stable":"s","canary":"c","weight":5,"hash_on":"ip"}]}`))
	if !errors.Is(err, router.ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	for _, field := range []string{"keys[0].sha256", "keys[0].key_id", "keys[0].tenant", "keys[0].tier", "canaries[0].hash_on"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
}

func TestBucketStableAndSpread(t *testing.T) {
	// Pinned values: changing the hash would move live traffic between aliases.
	pinned := map[string]uint32{"req-1": 26, "req-2": 7, "req-3": 88, "acme": 86}
	for k, want := range pinned {
		if got := router.Bucket("gpt-4o", k); got != want {
			t.Errorf("Bucket(gpt-4o, %s) = %d, want %d", k, got, want)
		}
	}
	// Roughly uniform: each decile gets 5-15% of 10k keys.
	var deciles [10]int
	for i := range 10000 {
		deciles[router.Bucket("gpt-4o", "req-"+itoa(i))/10]++
	}
	for d, n := range deciles {
		if n < 500 || n > 1500 {
			t.Errorf("decile %d got %d of 10000", d, n)
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestCanaryWeightMatchesShare(t *testing.T) {
	r, err := router.ParseConfig([]byte(`{"anonymous":{"tenant":"p","tier":"t"},"tiers":{"t":{"default_model":"m"}},
		"canaries":[{"alias":"m","stable":"m-a","canary":"m-b","weight":10}]}`))
	if err != nil {
		t.Fatal(err)
	}
	canary := 0
	for i := range 10000 {
		d := r.Decide(router.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {"x-request-id", "id-" + itoa(i)}}})
		if d.Canary {
			canary++
		}
	}
	if canary < 800 || canary > 1200 {
		t.Fatalf("canary share = %d/10000, want ~1000", canary)
	}
}

func TestReplyBodyEscapes(t *testing.T) {
	r := router.Reply{Status: 404, Type: "invalid_request_error", Code: "unknown_url", Message: "Unknown request URL: POST /\"x\"\n."}
	want := `{"error":{"message":"Unknown request URL: POST /\"x\"\u000a.","type":"invalid_request_error","code":"unknown_url"}}`
	if got := string(r.Body()); got != want {
		t.Fatalf("Body() = %s, want %s", got, want)
	}
}

// FuzzParseConfig: ParseConfig never panics, rejects with ErrInvalidConfig, and
// an accepted configuration makes decisions without panicking.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"anonymous":{"tenant":"p","tier":"t"},"tiers":{"t":{"default_model":"m","allowed_models":["m"]}}}`))
	f.Add([]byte(`{"keys":[{"sha256":"4a873d79ed9c2db05e0f5f776fe4356526687b33d5e37e2247622acdab611cba","key_id":"k","tenant":"a","tier":"t"}],"tiers":{"t":{}},"canaries":[{"alias":"m","stable":"a","canary":"b","weight":50,"hash_on":"tenant"}]}`))
	f.Add([]byte(`{"keys":[1,2],"deny":{"paths":[3]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := router.ParseConfig(data)
		if err != nil {
			if !errors.Is(err, router.ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		d := r.Decide(router.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {"x-tollgate-tenant", "evil"}}})
		for _, h := range d.Set {
			if h.Name == router.HeaderTenant && h.Value == "evil" && d.Outcome != router.OutcomeAnonymous {
				t.Fatalf("client tenant survived: %+v", d)
			}
		}
	})
}

func BenchmarkDecide(b *testing.B) {
	r, err := router.ParseConfig([]byte(`{"keys":[{"sha256":"4a873d79ed9c2db05e0f5f776fe4356526687b33d5e37e2247622acdab611cba","key_id":"k","tenant":"acme","tier":"pro"}],
		"tiers":{"pro":{"default_model":"gpt-4o","allowed_models":["gpt-4o","gpt-4o-mini"]}},
		"canaries":[{"alias":"gpt-4o","stable":"gpt-4o-a","canary":"gpt-4o-b","weight":10}]}`))
	if err != nil {
		b.Fatal(err)
	}
	req := router.Request{Headers: typicalHeaders()}
	var d router.Decision // reused, as the filter does
	b.ReportAllocs()
	for b.Loop() {
		if r.DecideInto(req, &d); d.Outcome != router.OutcomeAllowed {
			b.Fatal(d.Outcome)
		}
	}
}

func typicalHeaders() [][2]string {
	return [][2]string{
		{":authority", "api.example.com"}, {":path", "/v1/chat/completions"}, {":method", "POST"}, {":scheme", "https"},
		{"content-type", "application/json"}, {"accept", "application/json"}, {"user-agent", "OpenAI/Python 1.99.0"},
		{"authorization", "Bearer sk-acme-pro-1"}, {"x-request-id", "8a7e9c3e-1f2b-4c55-9d1e-2b8f0a6c4d11"},
		{"x-forwarded-proto", "https"}, {"content-length", "512"}, {"x-tollgate-tenant", "evil"},
	}
}
