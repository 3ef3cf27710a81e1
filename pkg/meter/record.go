package meter

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends rec as one JSON object, byte-for-byte what
// encoding/json would produce for the record struct, without reflection or
// allocation beyond dst's growth. Strings must be valid UTF-8 (Budgets.Reserve
// checks tenant and id; windows are generated).
func appendRecord(dst []byte, rec *record) []byte {
	dst = append(dst, `{"op":`...)
	dst = appendJSONString(dst, rec.Op)
	dst = append(dst, `,"t":"`...)
	dst = rec.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","tenant":`...)
	dst = appendJSONString(dst, rec.Tenant)
	dst = append(dst, `,"id":`...)
	dst = appendJSONString(dst, rec.ID)
	dst = append(dst, `,"day":`...)
	dst = appendJSONString(dst, rec.Day)
	dst = append(dst, `,"month":`...)
	dst = appendJSONString(dst, rec.Month)
	dst = append(dst, `,"amount_pusd":`...)
	dst = strconv.AppendInt(dst, int64(rec.Amount), 10)
	if rec.Reserved != 0 {
		dst = append(dst, `,"reserved_pusd":`...)
		dst = strconv.AppendInt(dst, int64(rec.Reserved), 10)
	}
	if rec.Recovered {
		dst = append(dst, `,"recovered":true`...)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping quotes, backslashes
// and control characters.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// validIdentifier reports whether a tenant or reservation id can be stored.
func validIdentifier(s string) bool { return s != "" && utf8.ValidString(s) }
