package fakeprovider_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

// benchChat serves one request through ServeHTTP (no network), as the load
// test's upstream does per exchange.
func benchChat(b *testing.B, body string, header http.Header) {
	p := fakeprovider.New(fakeprovider.Options{NoRecording: true})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
		for k, v := range header {
			req.Header[k] = v
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

func chatBody2K() string {
	user := strings.Repeat("please summarise the quarterly report for the northern region ", 30)
	return `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"` + user + `"}]}`
}

func BenchmarkChatCompletionJSON(b *testing.B) { benchChat(b, chatBody2K(), nil) }

func BenchmarkChatCompletionStream(b *testing.B) {
	body := strings.Replace(chatBody2K(), `"model"`, `"stream":true,"stream_options":{"include_usage":true},"model"`, 1)
	benchChat(b, body, nil)
}

func BenchmarkEmbed(b *testing.B) {
	text := strings.Repeat("the quick brown fox jumps over the lazy dog ", 20)
	b.ReportAllocs()
	for b.Loop() {
		_ = fakeprovider.Embed(text, 256)
	}
}

func TestNoRecordingStillCounts(t *testing.T) {
	p := fakeprovider.New(fakeprovider.Options{NoRecording: true})
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader([]byte(chatBody2K())))
	w := httptest.NewRecorder()
	p.ServeHTTP(w, req)
	if w.Code != http.StatusOK || p.Calls() != 1 || len(p.Requests()) != 0 {
		t.Fatalf("status %d, calls %d, recorded %d", w.Code, p.Calls(), len(p.Requests()))
	}
}
