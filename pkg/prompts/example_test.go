package prompts_test

import (
	"fmt"

	"github.com/tollgate-dev/tollgate/pkg/prompts"
)

func Example() {
	reg, err := prompts.LoadDir("../../prompts")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Header values of the request.
	p, err := reg.Resolve("support-answer")
	if err != nil {
		fmt.Println(err)
		return
	}
	vars, err := prompts.ParseVars(`{"product":"Acme Cloud"}`)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, err := p.Apply([]byte(`{"model":"small","messages":[{"role":"user","content":"hi"}]}`), vars)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Ref())
	fmt.Println(len(body) > 0)
	// Output:
	// support-answer@2
	// true
}
