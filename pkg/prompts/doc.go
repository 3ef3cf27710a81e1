// Package prompts is the prompt registry: versioned prompt templates kept as
// YAML files in a Git-tracked directory, resolved per request by reference
// and injected in front of the client's chat messages.
//
// One file per prompt name (prompts/support-answer.yaml) lists its versions;
// "current" pins the version that a bare name resolves to:
//
//	name: support-answer
//	current: 2
//	versions:
//	  - version: 2
//	    changelog: Answer in the customer's language.
//	    system: |
//	      You are the support assistant of {{product}}. Answer in {{language}}.
//	    few_shot:
//	      - {role: user, content: "Where is my invoice?"}
//	      - {role: assistant, content: "Under Billing > Invoices."}
//	    variables:
//	      - {name: product, required: true}
//	      - {name: language, default: English}
//	    model:
//	      allowed: [small, auto]
//	      max_tokens: 512
//
// A request selects a prompt with the header x-tollgate-prompt ("name@2" or
// "name" for the pinned version) and passes variables as a JSON object of
// strings in x-tollgate-prompt-vars (headers, not a body field, so the body
// the provider sees is exactly the client's plus the injected messages).
//
// Every {{placeholder}} must be a declared variable; this and every other
// problem is reported at load with file:line. Apply errors are typed
// (ErrUnknownPrompt, ErrMissingVariable, ErrUnknownVariable,
// ErrModelNotAllowed, ErrNotChat, ErrInvalidVariables) and all mean HTTP 400.
//
// [DirWatcher] polls a registry directory for changes (file names, sizes
// and modification times), so a running server can reload the registry
// when a prompt is edited or rolled back.
package prompts
