package translate_test

import (
	"fmt"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
)

// The upstream ext_proc role receives xds.cluster_name and maps it back to
// the alias and the target's position in the fallback order.
func ExampleParseTargetCluster() {
	name := translate.TargetClusterName("gpt-4o-mini", 1)
	alias, index, ok := translate.ParseTargetCluster(name)
	fmt.Println(name, alias, index, ok)
	// Output: tollgate/target/gpt-4o-mini/1 gpt-4o-mini 1 true
}
