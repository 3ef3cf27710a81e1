package cache

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestGuardVeto(t *testing.T) {
	idf := DefaultIDF()
	tests := []struct {
		a, b string
		want string
	}{
		{"What is the capital of France?", "what's the capital of France", ""},
		{"What is the capital of France?", "What is the capital of Germany?", VetoEntity},
		{"what is the capital of france?", "what is the capital of germany?", VetoEntity},
		{"how do i configure the zorblax flag", "how do i configure the quuxinator flag", VetoContent},
		{"How many people live in Paris in 2020?", "How many people live in Paris in 2021?", VetoNumber},
		{"Convert 1,000 dollars to euros", "Convert 1000 dollars to euros", ""},
		{"Convert 100 dollars to euros", "Convert dollars to euros", VetoNumber},
		{"Is coffee good for you?", "Is coffee not good for you?", VetoNegation},
		{"Why isn't my code compiling?", "Why is my code compiling?", VetoNegation},
		{"Why is the sky blue?", "When is the sky blue?", VetoQuestion},
		{"What does ~ mean in C++?", "What does ~ mean in C?", VetoEntity},
		{"How do I learn Python quickly?", "How can I learn Python fast?", ""},
		{"Which football team has the biggest fan base?", "Which football club has the biggest fanbase?", ""},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, GuardVeto(tc.a, tc.b, idf), "%q vs %q", tc.a, tc.b)
		assert.Equal(t, tc.want, GuardVeto(tc.b, tc.a, idf), "symmetric: %q vs %q", tc.b, tc.a)
	}
}

func TestTokenize(t *testing.T) {
	toks := tokenize("Hello, World! It's 1,000 C++ and C# in 3.14 days.", nil)
	var words []string
	for _, tk := range toks {
		words = append(words, tk.lower)
	}
	assert.Equal(t, []string{"hello", "world", "it's", "1000", "c++", "and", "c#", "in", "3.14", "days"}, words)
	assert.True(t, toks[0].initial)
	assert.True(t, toks[1].capital)
	assert.False(t, toks[1].initial)
	assert.True(t, toks[2].initial, "after '!'")
	assert.True(t, toks[3].number)
}
