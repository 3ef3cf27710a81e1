// Package e2e holds Tollgate's end-to-end scenarios: the official OpenAI Go
// SDK as the client, an Envoy (the test/envoysim emulator, or a real Envoy
// when ENVOY_BIN is set) running Tollgate's filter config, the real
// `tollgate extproc` server, and test/fakeprovider as the upstream.
//
// Each scenario is a function of a Gateway, so the same scenarios run
// against every Envoy the suite can start.
package e2e
