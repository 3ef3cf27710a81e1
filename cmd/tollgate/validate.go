package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tollgate-dev/tollgate/envoy/validate"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "tollgate.yaml to check (default: the embedded default)")
	envoyFile := fs.String("envoy", "", "an Envoy, Istio, Envoy Gateway or Kubernetes YAML file to check instead")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *envoyFile != "" {
		if err := validate.ValidateEnvoyFile(*envoyFile); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", *envoyFile)
		return 0
	}
	c, err := loadConfig(*path)
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintln(stderr, p.String())
			}
			fmt.Fprintf(stderr, "%d problem(s)\n", len(ps))
			return 1
		}
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d providers, %d model aliases, %d keys)\n", c.Source, len(c.Providers), len(c.Models), len(c.Tenants.Keys))
	return 0
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default()
	}
	return config.Load(path)
}
