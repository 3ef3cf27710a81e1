package eval_test

import (
	"fmt"

	"github.com/tollgate-dev/tollgate/pkg/eval"
)

func ExampleModelTracker() {
	tr := eval.NewModelTracker(0, nil)
	tr.Observe("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "fp_44709d6fcb")
	tr.Observe("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "") // no fingerprint: not a change
	changed, prev := tr.Observe("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "fp_0aa8d3e20b")
	fmt.Println(changed, prev.Fingerprint)
	// Output: true fp_44709d6fcb
}

func ExampleCheck_Eval() {
	set, err := eval.ParseSet([]byte(`
cases:
  - id: json
    prompt: "Reply with a JSON object with an integer field n."
    checks:
      - {type: json_schema, schema: {type: object, required: [n], properties: {n: {type: integer}}}}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	check := set.Cases[0].Checks[0]
	fmt.Println(check.Eval(`{"n": 3}`) == nil, check.Eval(`{"n": "3"}`) == nil)
	// Output: true false
}
