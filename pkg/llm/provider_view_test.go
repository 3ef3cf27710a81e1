package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// hasDuplicateKeys reports whether any JSON object in body repeats a key.
func hasDuplicateKeys(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		expect bool // next string token in an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return true
				}
				top.keys[k] = true
				top.expect = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, expect: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the next token in the enclosing object is a key.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].expect = true
		}
	}
}

// providerView checks r against body as an upstream that decodes JSON with
// encoding/json (the last duplicate wins, as in most JSON libraries) would
// read it: every text it would send to the model is one of r.Texts (by value
// and path), and max_tokens and n are what r says.
func providerView(op Operation, r *Request, body []byte) error {
	var req map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("the provider cannot decode the body: %w", err)
	}
	texts := map[string]string{}
	for _, t := range r.Texts {
		texts[t.Path] = t.Text
	}
	check := func(path string, v any) error {
		s, ok := v.(string)
		if !ok {
			return nil
		}
		if got, ok := texts[path]; !ok || got != s {
			return fmt.Errorf("the provider reads %q at %s, the gateway inspected %q (present %v)", s, path, got, ok)
		}
		return nil
	}
	strs := func(field string) error {
		switch v := req[field].(type) {
		case string:
			return check(field, v)
		case []any:
			for i, s := range v {
				if err := check(field+"."+strconv.Itoa(i), s); err != nil {
					return err
				}
			}
		}
		return nil
	}
	switch op {
	case OpChat:
		msgs, _ := req["messages"].([]any)
		for i, m := range msgs {
			msg, _ := m.(map[string]any)
			base := "messages." + strconv.Itoa(i) + ".content"
			switch c := msg["content"].(type) {
			case string:
				if err := check(base, c); err != nil {
					return err
				}
			case []any:
				for j, p := range c {
					part, _ := p.(map[string]any)
					if err := check(base+"."+strconv.Itoa(j)+".text", part["text"]); err != nil {
						return err
					}
				}
			}
		}
	case OpCompletion:
		if err := strs("prompt"); err != nil {
			return err
		}
	case OpEmbedding:
		if err := strs("input"); err != nil {
			return err
		}
	}
	// Providers differ on which of max_completion_tokens and max_tokens wins
	// when both are present, so the gateway must budget for the larger: it
	// may reserve more than a provider generates, never less.
	num := func(k string) (int64, bool) {
		v, ok := req[k].(json.Number)
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		return n, err == nil
	}
	mct, _ := num("max_completion_tokens")
	mt, _ := num("max_tokens")
	if want := max(mct, mt); r.MaxTokens != want {
		return fmt.Errorf("the provider may read max tokens %d, the gateway budgets %d", want, r.MaxTokens)
	}
	n, ok := num("n")
	if !ok {
		n = 1
	}
	if r.N != n {
		return fmt.Errorf("the provider reads n=%d, the gateway %d", n, r.N)
	}
	return nil
}
