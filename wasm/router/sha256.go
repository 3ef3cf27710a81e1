package router

import "encoding/binary"

// sha256Sum returns the SHA-256 of s (FIPS 180-4). It exists because
// crypto/sha256 links os and time into a wasip1 module; API keys are short, so
// a straightforward implementation is fast enough (one or two 64-byte blocks
// per request).
func sha256Sum(s string) [32]byte {
	h := [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}
	n := len(s)
	var block [64]byte
	for len(s) >= 64 {
		copy(block[:], s)
		sha256Block(&h, &block)
		s = s[64:]
	}
	// Padding: 0x80, zeros, 64-bit big-endian bit length; one or two blocks.
	block = [64]byte{}
	copy(block[:], s)
	block[len(s)] = 0x80
	if len(s) >= 56 {
		sha256Block(&h, &block)
		block = [64]byte{}
	}
	binary.BigEndian.PutUint64(block[56:], uint64(n)*8)
	sha256Block(&h, &block)
	// Wipe the input from the stack: it is an API key, and the stack lives in
	// linear memory where it would stay until overwritten.
	clear(block[:])
	var out [32]byte
	for i, v := range h {
		binary.BigEndian.PutUint32(out[4*i:], v)
	}
	return out
}

var sha256K = [64]uint32{
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

// sha256Block runs the compression function on one block. It is shaped for
// Go's wasm backend, measured under wazero (a loop beats unrolling there: the
// unrolled forms spill more than they save):
//   - a 32-bit rotation is i32.wrap + i32.rotl + i64.extend in Go wasm, so the
//     three rotations of each Σ/σ are done as shifts of the word duplicated
//     into both halves of a uint64 (rotr(x, n) == uint32((x<<32|x) >> n));
//   - the message schedule is a 16-word ring computed as the rounds need it,
//     and the first 16 rounds, which need no schedule, are a separate loop.
//
// Together about a third faster than the textbook loop in wasm.
func sha256Block(h *[8]uint32, p *[64]byte) {
	var w [16]uint32
	for i := range 16 {
		w[i] = binary.BigEndian.Uint32(p[4*i:])
	}
	a, b, c, d, e, f, g, hh := h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
	for i := range 16 {
		e64, a64 := uint64(e), uint64(a)
		de, da := e64|e64<<32, a64|a64<<32
		t1 := hh + uint32(de>>6^de>>11^de>>25) + (e&f ^ ^e&g) + sha256K[i] + w[i]
		t2 := uint32(da>>2^da>>13^da>>22) + (a&b ^ a&c ^ b&c)
		hh, g, f, e, d, c, b, a = g, f, e, d+t1, c, b, a, t1+t2
	}
	for i := 16; i < 64; i++ {
		v1, v2 := uint64(w[(i-2)&15]), uint64(w[(i-15)&15])
		d1, d2 := v1|v1<<32, v2|v2<<32
		wi := w[i&15] + uint32(d2>>7^d2>>18^v2>>3) + w[(i-7)&15] + uint32(d1>>17^d1>>19^v1>>10)
		w[i&15] = wi
		e64, a64 := uint64(e), uint64(a)
		de, da := e64|e64<<32, a64|a64<<32
		t1 := hh + uint32(de>>6^de>>11^de>>25) + (e&f ^ ^e&g) + sha256K[i] + wi
		t2 := uint32(da>>2^da>>13^da>>22) + (a&b ^ a&c ^ b&c)
		hh, g, f, e, d, c, b, a = g, f, e, d+t1, c, b, a, t1+t2
	}
	h[0] += a
	h[1] += b
	h[2] += c
	h[3] += d
	h[4] += e
	h[5] += f
	h[6] += g
	h[7] += hh
}
