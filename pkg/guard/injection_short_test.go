package guard

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShortChatMessagesAreNotInjections: greetings and short replies, the
// commonest chat turns, are never blocked. "hello" alone scored 0.77 against
// a 0.51 threshold (greetings open many jailbreaks in the training data).
func TestShortChatMessagesAreNotInjections(t *testing.T) {
	g, err := New(DefaultConfig())
	require.NoError(t, err)
	for _, text := range []string{
		"hello", "Hello", "hi", "hey", "Hello!", "thanks", "ok", "yes", "no", "test",
		"hello world", "hi there", "Hallo", "bonjour", "ok, thanks", "Thank you!",
		"Hello, how are you?", "hello there, can you help me?", "Good morning!",
	} {
		assert.Less(t, g.InjectionScore(text), g.InjectionThreshold(), "%q", text)
	}
}
