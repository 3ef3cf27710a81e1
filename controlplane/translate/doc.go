// Package translate turns a validated tollgate config into Envoy v3 resources.
//
// It is a pure function of the config: no I/O, no clocks. The ext_proc filter
// configs built here are the single source of the processing modes Tollgate
// ships; the static configs in envoy/ and the Envoy emulator in test/envoysim
// use the same values (tests compare them).
package translate
