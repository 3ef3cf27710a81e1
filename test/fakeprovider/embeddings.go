package fakeprovider

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
)

// maxEmbeddingDimensions bounds the "dimensions" a request may ask for.
const maxEmbeddingDimensions = 4096

// Embed is the provider's embedding of text with dims dimensions: feature
// hashing of the lower-cased words (each word adds ±1 to one dimension,
// chosen by FNV-1a), L2-normalised. Texts sharing words have a positive
// cosine similarity; equal word multisets have similarity 1. Text without
// words embeds to the unit vector on dimension 0.
func Embed(text string, dims int) []float32 {
	if dims < 1 {
		dims = 1
	}
	v := make([]float32, dims)
	for w := range strings.FieldsSeq(strings.ToLower(text)) {
		h := fnv.New64a()
		_, _ = h.Write([]byte(w)) // hash.Hash never fails
		sum := h.Sum64()
		sign := float32(1)
		if sum>>63 == 1 {
			sign = -1
		}
		v[sum%uint64(dims)] += sign
	}
	var norm float64
	for _, x := range v {
		norm += float64(x) * float64(x)
	}
	if norm == 0 {
		v[0] = 1
		return v
	}
	inv := float32(1 / math.Sqrt(norm))
	for i := range v {
		v[i] *= inv
	}
	return v
}

func (p *Provider) embeddings(w http.ResponseWriter, _ *http.Request, body []byte, b behaviour) {
	var req embeddingRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "", "")
		return
	}
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "you must provide a model parameter", "invalid_request_error", "", "")
		return
	}
	inputs, err := promptTexts(req.Input)
	if err != nil || len(inputs) == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("'$.input' is invalid: %v", err), "invalid_request_error", "input", "")
		return
	}
	dims := p.opts.EmbeddingDimensions
	if req.Dimensions != nil {
		if *req.Dimensions < 1 || *req.Dimensions > maxEmbeddingDimensions {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid value for 'dimensions' = %d.", *req.Dimensions), "invalid_request_error", "dimensions", "")
			return
		}
		dims = *req.Dimensions
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid value for 'encoding_format' = %s.", req.EncodingFormat), "invalid_request_error", "encoding_format", "")
		return
	}
	resp := embeddingList{Object: "list", Model: p.responseModel(&b, req.Model), Data: make([]embeddingData, len(inputs))}
	var tokens int64
	for i, in := range inputs {
		tokens += countWords(in)
		vec := Embed(in, dims)
		var emb any = vec
		if req.EncodingFormat == "base64" {
			raw := make([]byte, 4*len(vec))
			for j, x := range vec {
				binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(x))
			}
			emb = base64.StdEncoding.EncodeToString(raw)
		}
		resp.Data[i] = embeddingData{Object: "embedding", Index: i, Embedding: emb}
	}
	if b.usage.Prompt != nil {
		tokens = *b.usage.Prompt
	}
	resp.Usage = embeddingUsage{PromptTokens: tokens, TotalTokens: tokens}
	setResponseHeaders(w, fmt.Sprintf("emb-fake%06d", p.nextID()))
	p.writeJSON(w, http.StatusOK, resp, b.fault)
}

func (p *Provider) modelObject(id string) modelObject {
	return modelObject{ID: id, Object: "model", Created: 1700000000, OwnedBy: "fakeprovider"}
}

func (p *Provider) models(w http.ResponseWriter, _ *http.Request, _ []byte, b behaviour) {
	list := modelList{Object: "list", Data: make([]modelObject, len(p.opts.Models))}
	for i, m := range p.opts.Models {
		list.Data[i] = p.modelObject(m)
	}
	p.writeJSON(w, http.StatusOK, list, b.fault)
}

func (p *Provider) model(w http.ResponseWriter, r *http.Request, _ []byte, b behaviour) {
	id := r.PathValue("id")
	for _, m := range p.opts.Models {
		if m == id {
			p.writeJSON(w, http.StatusOK, p.modelObject(m), b.fault)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("The model '%s' does not exist", id), "invalid_request_error", "model", "model_not_found")
}
