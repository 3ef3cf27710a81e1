// Package tollgatee2e holds one end-to-end test of the emulator with
// Tollgate's real ext_proc server (extproc.Run) in both roles and two fake
// providers, configured by envoysim.FromTollgate. It lives apart from
// package envoysim so that the emulator's own tests do not depend on the
// server's packages. It has no API.
package tollgatee2e
