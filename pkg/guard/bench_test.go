package guard

import (
	"strings"
	"testing"
)

// benchPrompt builds a realistic prompt of about n bytes: prose, a code
// fragment, numbers and punctuation, without entities.
func benchPrompt(n int) string {
	const para = "Please review the following deployment notes and summarise the risks for the on-call team. " +
		"The service handles about 1,200 requests per second at peak (p99 latency 85 ms) and runs 3 replicas. " +
		"Config: timeout = 30s, retries: 2, region: eu-west-1, version 4.2.1 released on 2024-03-18.\n" +
		"func handle(w http.ResponseWriter, r *http.Request) { if err := serve(r.Context()); err != nil { log(err) } }\n" +
		"Explain, in plain language, what could go wrong during the migration and what we should monitor first. "
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(para)
	}
	return b.String()[:n]
}

func benchGuard(b *testing.B) *Guard {
	b.Helper()
	g, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	return g
}

func BenchmarkCheck(b *testing.B) {
	g := benchGuard(b)
	for _, size := range []struct {
		name string
		n    int
	}{{"2KiB", 2 << 10}, {"32KiB", 32 << 10}} {
		text := benchPrompt(size.n)
		b.Run(size.name+"/clean", func(b *testing.B) {
			s := g.NewSession()
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			cpu, ops := processCPU(), 0
			for b.Loop() {
				if r := s.Check(text); r.Blocked || r.Modified {
					b.Fatalf("clean text flagged: %v", r.Findings)
				}
				ops++
			}
			reportCPU(b, cpu, ops)
		})
		dirty := text[:len(text)-120] + " mail jane.doe@example.com, card 4111 1111 1111 1111, key AKIAIOSFODNN7EXAMPLE ok"
		b.Run(size.name+"/entities", func(b *testing.B) {
			s := g.NewSession()
			b.SetBytes(int64(len(dirty)))
			b.ReportAllocs()
			cpu, ops := processCPU(), 0
			for b.Loop() {
				if r := s.Check(dirty); !r.Modified {
					b.Fatal("entities not redacted")
				}
				ops++
			}
			reportCPU(b, cpu, ops)
		})
	}
}

// BenchmarkCheckFull runs every built-in detector (DefaultConfig plus the
// opt-in entities detector) on the 2 KiB prompt.
func BenchmarkCheckFull(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Rules[DetectorEntities] = ActionRedact
	g, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	text := benchPrompt(2 << 10)
	s := g.NewSession()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	cpu, ops := processCPU(), 0
	for b.Loop() {
		if r := s.Check(text); r.Blocked {
			b.Fatalf("clean text blocked: %v", r.Findings)
		}
		ops++
	}
	reportCPU(b, cpu, ops)
}

// BenchmarkDetectors splits the 2 KiB clean cost by detector.
func BenchmarkDetectors(b *testing.B) {
	text := benchPrompt(2 << 10)
	m, err := loadModel()
	if err != nil {
		b.Fatal(err)
	}
	ents, err := newEntitiesDetector()
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range []Detector{newPIIDetector(), newSecretsDetector(), ents, newInjectionDetector(m, 0)} {
		b.Run(d.Name(), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			var dst []Finding
			cpu, ops := processCPU(), 0
			for b.Loop() {
				dst = d.Detect(text, dst[:0])
				ops++
			}
			reportCPU(b, cpu, ops)
		})
	}
}

// BenchmarkStream measures the streaming scanner per chunk of 16 bytes
// (a typical SSE delta) over a 2 KiB answer.
func BenchmarkStream(b *testing.B) {
	g := benchGuard(b)
	text := benchPrompt(2 << 10)
	const chunk = 16
	b.ReportAllocs()
	chunks := 0
	cpu := processCPU()
	for b.Loop() {
		st := g.NewSession().NewStream()
		for i := 0; i < len(text); i += chunk {
			st.Write(text[i:min(i+chunk, len(text))])
			chunks++
		}
		st.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(chunks), "ns/chunk")
	reportCPU(b, cpu, chunks) // per chunk
}
