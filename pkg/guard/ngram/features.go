package ngram

// Feature kinds are mixed into the hash so that a word and a character
// n-gram with the same bytes land in different buckets.
const (
	kindWord    = 1
	kindBigram  = 2
	kindChar4   = 3
	kindChar3   = 4
	kindChar5   = 5
	kindTrigram = 6
	kindShape   = 7
)

const mixMul = 0x9E3779B97F4A7C15

func bucket(h uint64, bits uint8) uint32 {
	h ^= h >> 29
	h *= mixMul
	return uint32(h >> (64 - uint64(bits)))
}

// FeatureSet selects the feature families; it is stored in the model file
// so that scoring uses the families the model was trained with.
type FeatureSet uint8

// Feature families.
const (
	WordUnigrams FeatureSet = 1 << iota
	WordBigrams
	Char3
	Char4
	Char5
	WordTrigrams
	Shape5
	AllFeatures = WordUnigrams | WordBigrams | Char3 | Char4 | Char5 | WordTrigrams | Shape5
)

func isWordByte(c byte) bool {
	return c >= 0x80 || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')
}

// Features appends to dst[:0] the bucket index (in [0, 1<<bits)) of every
// feature in set of the normalised text norm: word unigrams, bigrams and
// trigrams, character 3-, 4- and 5-grams and character-class 5-grams (text
// padded with one space at each end). The number of appended indices is
// the feature count used to scale the score.
func Features(dst []uint32, norm []byte, bits uint8, set FeatureSet) []uint32 {
	dst, _ = FeaturesAt(dst, nil, norm, bits, set)
	return dst
}

// FeaturesAt is Features that also appends to pos[:0] (unless pos is nil)
// the offset in norm of the last byte of each feature, for window scoring.
func FeaturesAt(dst []uint32, pos []int32, norm []byte, bits uint8, set FeatureSet) ([]uint32, []int32) {
	dst = dst[:0]
	if pos != nil {
		pos = pos[:0]
	}
	last := int32(len(norm) - 1)
	// Word unigrams and bigrams (FNV-1a per word).
	var prev, prev2 uint64
	nprev := 0
	for i := 0; i < len(norm); {
		if !isWordByte(norm[i]) {
			i++
			continue
		}
		h := uint64(14695981039346656037)
		for ; i < len(norm) && isWordByte(norm[i]); i++ {
			h ^= uint64(norm[i])
			h *= 1099511628211
		}
		if set&WordUnigrams != 0 {
			dst = append(dst, bucket(h^kindWord, bits))
			if pos != nil {
				pos = append(pos, int32(i-1))
			}
		}
		if nprev >= 1 && set&WordBigrams != 0 {
			dst = append(dst, bucket((prev*mixMul)^h^kindBigram, bits))
			if pos != nil {
				pos = append(pos, int32(i-1))
			}
		}
		if nprev >= 2 && set&WordTrigrams != 0 {
			dst = append(dst, bucket(((prev2*mixMul)^prev)*mixMul^h^kindTrigram, bits))
			if pos != nil {
				pos = append(pos, int32(i-1))
			}
		}
		prev2, prev = prev, h
		nprev++
	}
	// Character n-grams over " " + norm + " ".
	n := len(norm)
	if n == 0 || set&(Char3|Char4|Char5|Shape5) == 0 {
		return dst, pos
	}
	var win uint64 = ' ' // sliding byte window, newest byte in the low bits
	var shape uint64 = ' '
	count := 1
	for i := 0; i <= n; i++ {
		c := byte(' ')
		if i < n {
			c = norm[i]
		}
		win = win<<8 | uint64(c)
		shape = shape<<8 | uint64(shapeClass[c])
		count++
		if count >= 3 && set&Char3 != 0 {
			dst = append(dst, bucket(win&0xFFFFFF|kindChar3<<32, bits))
			if pos != nil {
				pos = append(pos, min(int32(i), last))
			}
		}
		if count >= 4 && set&Char4 != 0 {
			dst = append(dst, bucket(win&0xFFFFFFFF|kindChar4<<32, bits))
			if pos != nil {
				pos = append(pos, min(int32(i), last))
			}
		}
		if count >= 5 && set&Char5 != 0 {
			dst = append(dst, bucket(win&0xFFFFFFFFFF|kindChar5<<40, bits))
			if pos != nil {
				pos = append(pos, min(int32(i), last))
			}
		}
		if count >= 5 && set&Shape5 != 0 {
			dst = append(dst, bucket(shape&0xFFFFFFFFFF|kindShape<<40, bits))
			if pos != nil {
				pos = append(pos, min(int32(i), last))
			}
		}
	}
	return dst, pos
}

// shapeClass maps a normalised byte to its class for shape n-grams:
// letters to 'a', digits to '0', bytes of non-ASCII characters to 'u',
// punctuation and space to themselves.
var shapeClass = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = 'a'
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = '0'
	}
	for i := 0x80; i < 256; i++ {
		t[i] = 'u'
	}
	return t
}()
