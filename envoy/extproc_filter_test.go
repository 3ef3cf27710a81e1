package envoy_test

import (
	"encoding/json"
	"flag"
	"os"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

var update = flag.Bool("update", false, "rewrite generated files under envoy/")

// The ext_proc filter configs users apply by hand (static Envoy) must be
// exactly what the control plane pushes and what the emulator runs.
func TestExtProcFilterFilesMatchTranslator(t *testing.T) {
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]*extprocv3.ExternalProcessor{
		"extproc/downstream.yaml": translate.DownstreamExtProc(cfg),
		"extproc/upstream.yaml":   translate.UpstreamExtProc(cfg),
	} {
		t.Run(file, func(t *testing.T) {
			if *update {
				writeYAML(t, file, want)
			}
			got := readFilter(t, file)
			if !proto.Equal(got, want) {
				t.Fatalf("%s differs from the translator's filter config; run go test ./envoy -update\n got: %v\nwant: %v", file, got, want)
			}
			if err := got.ValidateAll(); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
		})
	}
}

// readFilter parses a YAML ExternalProcessor strictly (unknown fields fail).
func readFilter(t *testing.T, file string) *extprocv3.ExternalProcessor {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var f extprocv3.ExternalProcessor
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, &f); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &f
}

func writeYAML(t *testing.T, file string, m proto.Message) {
	t.Helper()
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	// Render block style rather than the flow style of the JSON input.
	var unstyle func(n *yaml.Node)
	unstyle = func(n *yaml.Node) {
		n.Style = 0
		for _, c := range n.Content {
			unstyle(c)
		}
	}
	unstyle(&doc)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	header := "# Generated from controlplane/translate by `go test ./envoy -update`; do not edit.\n" +
		"# envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor for Tollgate's " + file + " role.\n"
	if err := os.WriteFile(file, append([]byte(header), out...), 0o644); err != nil {
		t.Fatal(err)
	}
}
