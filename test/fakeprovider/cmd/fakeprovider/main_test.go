package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"-nope"}},
		{"bad fault", []string{"-fault", "explode"}},
		{"bad listen address", []string{"-listen", "256.0.0.1:bad"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Error(t, run(tt.args))
		})
	}
}
