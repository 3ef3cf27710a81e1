package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tollgate-dev/tollgate/envoy/validate"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/config/preflight"
)

func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "tollgate.yaml to check (default: the embedded default)")
	envoyFile := fs.String("envoy", "", "an Envoy, Istio, Envoy Gateway or Kubernetes YAML file to check instead")
	skipEnv := fs.Bool("skip-env", false, "do not require the environment variables the config names (api_key_env, password_env) to be set here")
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
	policy := preflight.EnvError
	if *skipEnv {
		policy = preflight.EnvSkip
	}
	c, warns, err := loadChecked(*path, policy)
	for _, w := range warns {
		fmt.Fprintln(stderr, "warning: "+w.String())
	}
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d providers, %d model aliases, %d keys)\n", c.Source, len(c.Providers), len(c.Models), len(c.Tenants.Keys))
	return 0
}

// loadChecked loads the config and builds everything the server builds
// from it (preflight.Check), so that what validates is what starts.
func loadChecked(path string, env preflight.EnvPolicy) (*config.Config, config.Problems, error) {
	c, err := loadConfig(path)
	if err != nil {
		return nil, nil, err
	}
	_, warns, err := preflight.Check(c, preflight.Options{Env: env})
	if err != nil {
		return nil, warns, err
	}
	return c, warns, nil
}

// printProblems prints one problem a line with a count, or the error.
func printProblems(w io.Writer, err error) {
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(w, p.String())
		}
		fmt.Fprintf(w, "%d problem(s)\n", len(ps))
		return
	}
	fmt.Fprintf(w, "tollgate: %v\n", err)
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default()
	}
	return config.Load(path)
}
