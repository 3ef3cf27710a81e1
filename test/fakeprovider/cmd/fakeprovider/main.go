// Command fakeprovider serves the OpenAI-compatible fake upstream of
// package fakeprovider on a TCP address, for manual runs and load tests.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fakeprovider:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("fakeprovider", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on")
	reply := fs.String("reply", "", "fixed reply text (default: fakeprovider.DefaultReply)")
	replyMode := fs.String("reply-mode", "", `"echo" to reply with the last user message`)
	fault := fs.String("fault", "", "fault directives applied to requests without x-fake-fault")
	chunks := fs.Int("chunks", 0, "content chunks per stream (default 4)")
	chunkDelay := fs.Duration("chunk-delay", 0, "delay between stream chunks")
	apiKey := fs.String("api-key", "", "require this bearer token (with -azure, this api-key header)")
	azure := fs.Bool("azure", false, "serve Azure OpenAI's /openai/deployments/{d}/... paths (api-version and api-key required)")
	verbose := fs.Bool("v", false, "log every request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := fakeprovider.ParseFault(*fault); err != nil {
		return fmt.Errorf("-fault: %w", err)
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	p := fakeprovider.New(fakeprovider.Options{
		Addr: *listen, Reply: *reply, ReplyMode: *replyMode, Fault: *fault,
		Chunks: *chunks, ChunkDelay: *chunkDelay, APIKey: *apiKey, Azure: *azure, Logger: logger,
	})
	base, err := p.Start()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "fakeprovider listening on %s (OpenAI base URL %s/v1)\n", p.Addr(), base)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		return fmt.Errorf("close timed out")
	}
}
