package ads_test

import "flag"

// update is accepted so that `go test ./controlplane/... -update` (which
// rewrites the golden files in controlplane/translate) also runs here.
var _ = flag.Bool("update", false, "no golden files in this package")
