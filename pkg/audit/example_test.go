package audit_test

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/audit"
)

func Example() {
	dir, err := os.MkdirTemp("", "audit")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	log, err := audit.Open(dir, audit.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = log.Append(audit.Record{
		Time: time.Now(), RequestID: "r1", Tenant: "acme", Alias: "auto", Model: "gpt-4o-mini",
		TokensIn: 12, TokensOut: 30, Outcome: "ok",
		Findings: []audit.Finding{{Type: "email", Path: "messages.0.content", Start: 8, End: 25, Action: "redact"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := log.Close(); err != nil {
		fmt.Println(err)
		return
	}
	rep, err := audit.Verify(dir)
	fmt.Println(rep.Records, rep.OK(), err)
	fmt.Println(audit.RunVerify([]string{"verify", "--dir", dir}, io.Discard, io.Discard))
	// Output:
	// 1 true <nil>
	// 0
}
