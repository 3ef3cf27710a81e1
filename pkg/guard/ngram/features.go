package ngram

// Feature kinds are mixed into the hash so that a word and a character
// n-gram with the same bytes land in different buckets.
const (
	kindWord   = 1
	kindBigram = 2
	kindChar4  = 3
	kindChar3  = 4
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
	AllFeatures = WordUnigrams | WordBigrams | Char3 | Char4
)

func isWordByte(c byte) bool {
	return c >= 0x80 || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')
}

// Features appends to dst[:0] the bucket index (in [0, 1<<bits)) of every
// feature in set of the normalised text norm: word unigrams, word bigrams,
// character 3- and 4-grams (text padded with one space at each end). The
// number of appended indices is the feature count used to scale the score.
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
	var prev uint64
	havePrev := false
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
		if havePrev && set&WordBigrams != 0 {
			dst = append(dst, bucket((prev*mixMul)^h^kindBigram, bits))
			if pos != nil {
				pos = append(pos, int32(i-1))
			}
		}
		prev, havePrev = h, true
	}
	// Character n-grams over " " + norm + " ".
	n := len(norm)
	if n == 0 || set&(Char3|Char4) == 0 {
		return dst, pos
	}
	var win uint32 = ' ' // sliding 4-byte window, newest byte in the low bits
	count := 1
	for i := 0; i <= n; i++ {
		c := byte(' ')
		if i < n {
			c = norm[i]
		}
		win = win<<8 | uint32(c)
		count++
		if count >= 3 && set&Char3 != 0 {
			dst = append(dst, bucket(uint64(win&0xFFFFFF)|kindChar3<<32, bits))
			if pos != nil {
				pos = append(pos, min(int32(i), last))
			}
		}
		if count >= 4 && set&Char4 != 0 {
			dst = append(dst, bucket(uint64(win)|kindChar4<<32, bits))
			if pos != nil {
				pos = append(pos, min(int32(i), last))
			}
		}
	}
	return dst, pos
}
