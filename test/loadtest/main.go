// Command loadtest is the `make bench-load` driver. In one run it measures,
// side by side, a naive pass-through ext_proc server behind Envoy's naive
// 4-phase mode and `tollgate extproc` behind Tollgate's shipped mode, both
// behind the Envoy emulator (test/envoysim) with the fake provider
// (test/fakeprovider) as the upstream, and prints a markdown table of
// requests/s, p50/p99 latency and the ext_proc server's CPU time per
// exchange.
//
//	go run ./test/loadtest -duration 10s -concurrency 1,16 -tollgate ./bin/tollgate
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/envoy"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

type options struct {
	duration       time.Duration
	warmup         time.Duration
	concurrency    []int
	tollgate       string
	tollgateConfig string
	apiKey         string
	bodyBytes      int
	maxRequests    int64
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func parseConcurrency(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("-concurrency %q: want comma-separated integers in 1..1024", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured window per server and concurrency")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each window")
	conc := fs.String("concurrency", "1,16", "comma-separated numbers of concurrent clients")
	fs.StringVar(&o.tollgate, "tollgate", "", "path to the tollgate binary; empty or missing skips the tollgate rows")
	fs.StringVar(&o.tollgateConfig, "tollgate-config", "", "tollgate.yaml to use as-is (default: the embedded default with budgets lifted and the ledger in a temp dir)")
	fs.StringVar(&o.apiKey, "api-key", "sk-tollgate-demo", "bearer key sent with every request (the default config's demo key)")
	fs.IntVar(&o.bodyBytes, "body-bytes", 2048, "size of the chat completion request body")
	fs.Int64Var(&o.maxRequests, "max-requests", 2_000_000, "upper bound on requests per cell (warm-up included)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	c, err := parseConcurrency(*conc)
	if err != nil {
		return o, err
	}
	o.concurrency = c
	if o.duration <= 0 || o.warmup < 0 {
		return o, errors.New("-duration must be > 0 and -warmup >= 0")
	}
	return o, nil
}

// row is one line of the result table.
type row struct {
	server      string
	concurrency int
	res         loadResult
	cpu         time.Duration // server CPU over the window
	msgs        uint64        // ext_proc messages sent over the window
	note        string
}

// target is one ext_proc server under test.
type target struct {
	name   string
	filter *extprocfilterv3.ExternalProcessor
	start  func(ctx context.Context, dir string) (*serverProcess, error)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	body, err := chatBody(o.bodyBytes)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tollgate-loadtest-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	provider := fakeprovider.New(fakeprovider.Options{NoRecording: true})
	upstream, err := provider.Start()
	if err != nil {
		return err
	}
	defer provider.Close()

	fmt.Fprintln(stderr, "building the pass-through server...")
	ptBin, err := buildPassthrough(ctx, dir)
	if err != nil {
		return err
	}
	targets := []target{{
		name:   "passthrough, naive 4-phase",
		filter: naiveFilter(),
		start: func(ctx context.Context, dir string) (*serverProcess, error) {
			return startPassthrough(ctx, ptBin, dir)
		},
	}}
	var skipped []string
	if o.tollgate == "" {
		skipped = append(skipped, "tollgate extproc: skipped (no -tollgate)")
	} else if abs, err := filepath.Abs(o.tollgate); err != nil {
		return fmt.Errorf("-tollgate: %w", err)
	} else if _, err := os.Stat(abs); err != nil {
		skipped = append(skipped, fmt.Sprintf("tollgate extproc: skipped (%v)", err))
	} else {
		o.tollgate = abs
		rows := []struct {
			name      string
			allLayers bool
		}{{"tollgate, metering and budgets", false}, {"tollgate, every layer on", true}}
		for i, r := range rows {
			if o.tollgateConfig != "" && i > 0 {
				break // one row for a config given as is
			}
			var cfgBytes []byte
			name := r.name
			if o.tollgateConfig != "" {
				name = "tollgate, " + filepath.Base(o.tollgateConfig)
				if cfgBytes, err = os.ReadFile(o.tollgateConfig); err != nil {
					return fmt.Errorf("-tollgate-config: %w", err)
				}
			} else if cfgBytes, err = tollgateConfig(envoy.DefaultConfig, dir, r.allLayers); err != nil {
				return err
			}
			cfgPath := filepath.Join(dir, fmt.Sprintf("tollgate-%d.yaml", i))
			if err := os.WriteFile(cfgPath, cfgBytes, 0o600); err != nil {
				return fmt.Errorf("write tollgate config: %w", err)
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return fmt.Errorf("tollgate config: %w", err)
			}
			targets = append(targets, target{
				name:   name,
				filter: shippedFilter(cfg),
				start: func(ctx context.Context, dir string) (*serverProcess, error) {
					return startTollgate(ctx, o.tollgate, cfgPath, dir)
				},
			})
		}
	}

	header := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + o.apiKey}}
	var rows []row
	for _, tg := range targets {
		r, err := measureTarget(ctx, tg, o, dir, upstream, header, body, stderr)
		rows = append(rows, r...)
		if err != nil {
			return fmt.Errorf("%s: %w", tg.name, err)
		}
	}
	fmt.Fprintf(stdout, "ext_proc load test: %d-byte chat completion (JSON response), %v window after %v warm-up, GOMAXPROCS %d, %d CPUs\n\n",
		len(body), o.duration, o.warmup, runtime.GOMAXPROCS(0), runtime.NumCPU())
	writeTable(stdout, rows)
	for _, s := range skipped {
		fmt.Fprintf(stdout, "\n%s\n", s)
	}
	return nil
}

// measureTarget starts one server and runs every concurrency against it.
func measureTarget(ctx context.Context, tg target, o options, dir, upstream string, header http.Header, body []byte, stderr io.Writer) ([]row, error) {
	fmt.Fprintf(stderr, "starting %s...\n", tg.name)
	proc, err := tg.start(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := proc.stop(); err != nil {
			fmt.Fprintf(stderr, "%s: stop: %v\n", tg.name, err)
		}
	}()
	f, err := newSimFront(tg.filter, proc.addr, upstream)
	if err != nil {
		return nil, err
	}
	base, err := f.Start()
	if err != nil {
		return nil, fmt.Errorf("start envoysim: %w", err)
	}
	defer f.Close()
	url := base + "/v1/chat/completions"

	var rows []row
	for _, c := range o.concurrency {
		client := &http.Client{
			Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c, DisableCompression: true},
			Timeout:   30 * time.Second,
		}
		// One request first: a broken setup fails fast and clearly.
		if err := doRequest(ctx, client, url, header, body); err != nil {
			return rows, fmt.Errorf("probe request: %w (server log: %s)", err, proc.logTail())
		}
		var cpu0, cpu1 time.Duration
		var msgs0, msgs1 uint64
		fmt.Fprintf(stderr, "  concurrency %d: %v warm-up + %v...\n", c, o.warmup, o.duration)
		res, err := runLoad(ctx, client, loadConfig{
			URL: url, Body: body, Unique: true, Header: header, Concurrency: c,
			Warmup: o.warmup, Duration: o.duration, MaxRequests: o.maxRequests,
			OnWindowStart: func() (err error) {
				msgs0 = f.MessagesSent()
				cpu0, err = ProcessCPU(proc.pid())
				return err
			},
			OnWindowEnd: func() (err error) {
				cpu1, err = ProcessCPU(proc.pid())
				msgs1 = f.MessagesSent()
				return err
			},
		})
		client.CloseIdleConnections()
		if err != nil {
			return rows, fmt.Errorf("concurrency %d: %w", c, err)
		}
		r := row{server: tg.name, concurrency: c, res: res, cpu: cpu1 - cpu0, msgs: msgs1 - msgs0}
		if res.FirstErr != nil {
			r.note = res.FirstErr.Error()
			fmt.Fprintf(stderr, "  first error: %v\n", res.FirstErr)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func writeTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| ext_proc server | concurrency | requests | req/s | p50 | p99 | server CPU / exchange | ext_proc msgs / exchange | errors |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rows {
		cpuPer, msgsPer := "n/a", "n/a"
		if r.res.OK > 0 {
			cpuPer = fmt.Sprintf("%.0f µs", float64(r.cpu.Microseconds())/float64(r.res.OK))
			msgsPer = fmt.Sprintf("%.2f", float64(r.msgs)/float64(r.res.OK))
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %s | %s | %s | %s | %d |\n",
			r.server, r.concurrency, r.res.OK, r.res.RequestsPerSecond(),
			fmtLatency(r.res.Latencies.P50), fmtLatency(r.res.Latencies.P99), cpuPer, msgsPer, r.res.Errors)
	}
}

func fmtLatency(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
