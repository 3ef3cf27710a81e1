package llm

import (
	"bytes"
	"strconv"

	"github.com/tidwall/gjson"
)

// Event is one server-sent event. Data holds the joined data lines; Raw is
// the exact bytes of the event including its terminating blank line, so an
// unmodified event can be forwarded byte for byte.
type Event struct {
	Data []byte
	Raw  []byte
}

// Done reports whether the event is OpenAI's end marker "data: [DONE]".
func (e Event) Done() bool { return bytes.Equal(bytes.TrimSpace(e.Data), []byte("[DONE]")) }

// SSEDecoder splits a byte stream into events. Chunks may cut events (and
// lines, and CRLF pairs) anywhere; incomplete input is kept until more
// arrives. The zero value is ready to use.
type SSEDecoder struct {
	buf []byte
	// MaxEvent bounds the bytes held for one incomplete event (default 1 MiB);
	// past it Feed reports ErrEventTooLarge.
	MaxEvent int
}

// ErrEventTooLarge means an event grew past SSEDecoder.MaxEvent.
var ErrEventTooLarge = errorString("server-sent event exceeds the size limit")

type errorString string

func (e errorString) Error() string { return string(e) }

// Feed appends chunk and calls fn for every event completed by it. The
// Event's slices are only valid during the call.
func (d *SSEDecoder) Feed(chunk []byte, fn func(Event)) error {
	d.buf = append(d.buf, chunk...)
	start := 0
	for {
		end, next := eventEnd(d.buf[start:])
		if end < 0 {
			break
		}
		raw := d.buf[start : start+next]
		fn(Event{Data: eventData(d.buf[start : start+end]), Raw: raw})
		start += next
	}
	if start > 0 {
		n := copy(d.buf, d.buf[start:])
		d.buf = d.buf[:n]
	}
	limit := d.MaxEvent
	if limit == 0 {
		limit = 1 << 20
	}
	if len(d.buf) > limit {
		d.buf = d.buf[:0]
		return ErrEventTooLarge
	}
	return nil
}

// Pending returns the bytes of an incomplete trailing event.
func (d *SSEDecoder) Pending() []byte { return d.buf }

// Flush treats whatever is pending as a final event (a stream that ended
// without the blank line) and resets the decoder.
func (d *SSEDecoder) Flush(fn func(Event)) {
	if len(bytes.TrimSpace(d.buf)) > 0 {
		fn(Event{Data: eventData(d.buf), Raw: d.buf})
	}
	d.buf = d.buf[:0]
}

// eventEnd finds the blank line ending the first event in b: end is where
// the event's lines stop, next where the following event starts; -1 if none.
func eventEnd(b []byte) (end, next int) {
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' && b[i] != '\r' {
			continue
		}
		// i is a line terminator; the event ends if the next line is empty.
		j := i + 1
		if b[i] == '\r' {
			if j == len(b) {
				return -1, -1 // could be CRLF cut in two
			}
			if b[j] == '\n' {
				j++
			}
		}
		if j < len(b) && (b[j] == '\n' || b[j] == '\r') {
			k := j + 1
			if b[j] == '\r' {
				if k == len(b) {
					return -1, -1
				}
				if b[k] == '\n' {
					k++
				}
			}
			return i, k
		}
		i = j - 1
	}
	return -1, -1
}

// eventData joins the "data:" lines of one event with "\n". Lines end in
// LF, CR or CRLF.
func eventData(ev []byte) []byte {
	var out []byte
	n := 0
	for len(ev) > 0 {
		line := ev
		if i := bytes.IndexAny(ev, "\r\n"); i >= 0 {
			line, ev = ev[:i], ev[i+1:]
		} else {
			ev = nil
		}
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		v := line[5:]
		if len(v) > 0 && v[0] == ' ' {
			v = v[1:]
		}
		if n == 0 {
			out = v // common case: one data line, no copy
		} else {
			joined := make([]byte, 0, len(out)+1+len(v))
			out = append(append(append(joined, out...), '\n'), v...)
		}
		n++
	}
	return out
}

// AppendEvent appends "data: <data>\n\n" to dst.
func AppendEvent(dst, data []byte) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, '\n', '\n')
}

// DoneEvent is OpenAI's end-of-stream event.
var DoneEvent = []byte("data: [DONE]\n\n")

// Chunk is what the gateway reads from one chat.completion.chunk (or
// streamed text_completion) event.
type Chunk struct {
	Model             string
	SystemFingerprint string
	Usage             Usage
	HasUsage          bool
	NoChoices         bool // "choices": [] — the usage-only chunk
	Deltas            []Delta
	IsError           bool
}

// Delta is the text one choice adds in a chunk.
type Delta struct {
	Pos          int // position in the choices array
	Index        int64
	Path         string // sjson path of the text within the chunk
	Text         string
	FinishReason string
}

// ParseChunk reads one event's data as a streamed chunk. Like ParseResponse
// it rejects invalid JSON, nesting deeper than MaxDepth and duplicate keys.
func ParseChunk(data []byte) (Chunk, error) {
	if err := scanJSON(data); err != nil {
		return Chunk{}, err
	}
	root := gjson.ParseBytes(data)
	var c Chunk
	if root.Get("error").Exists() {
		c.IsError = true
		return c, nil
	}
	c.Model = root.Get("model").Str
	c.SystemFingerprint = root.Get("system_fingerprint").Str
	if u := root.Get("usage"); u.IsObject() {
		c.Usage, c.HasUsage = usageFrom(u), true
	}
	choices := root.Get("choices")
	c.NoChoices = choices.IsArray() && len(choices.Array()) == 0
	i := 0
	choices.ForEach(func(_, ch gjson.Result) bool {
		d := Delta{Pos: i, Index: ch.Get("index").Int(), FinishReason: ch.Get("finish_reason").Str}
		if t := ch.Get("delta.content"); t.Type == gjson.String {
			d.Path, d.Text = "choices."+strconv.Itoa(i)+".delta.content", t.Str
		} else if t := ch.Get("text"); t.Type == gjson.String {
			d.Path, d.Text = "choices."+strconv.Itoa(i)+".text", t.Str
		}
		c.Deltas = append(c.Deltas, d)
		i++
		return true
	})
	return c, nil
}
