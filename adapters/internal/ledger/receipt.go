package ledger

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
)

// A receipt names one lease and reads <tag>~<instance>.<partition>.<offset>.<seq>.
// The tag is the issuing ledger's (the queues use the message type, so a
// replica can tell which of its topics a receipt belongs to); the instance,
// 8 random hex digits, tells apart ledgers with the same tag in different
// processes or lifetimes; seq (base 36) tells apart leases of one record, so
// the receipt of an expired lease stays unknown when the record is leased
// again. This file is the only place that knows the format.

const (
	tagChars      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-" // those of a Kafka topic name
	instanceChars = "0123456789abcdef"
	instanceLen   = 8
	decimalChars  = "0123456789"
	seqChars      = "0123456789abcdefghijklmnopqrstuvwxyz"
)

// Receipt is what a receipt says.
type Receipt struct {
	Tag       string // the tag of the ledger that issued it
	Partition int32
	Offset    int64
}

// newID returns <tag>~<instance> for a new ledger; every receipt it issues
// starts with it.
func newID(tag string) string {
	if !only(tag, tagChars) {
		panic("ledger: tag " + strconv.Quote(tag) + " is not made of letters, digits, '.', '_' and '-'")
	}
	var b [instanceLen / 2]byte
	_, _ = rand.Read(b[:])
	return tag + "~" + hex.EncodeToString(b[:])
}

func formatReceipt(id string, p int32, offset int64, seq uint64) string {
	return id + "." + strconv.FormatInt(int64(p), 10) + "." + strconv.FormatInt(offset, 10) + "." + strconv.FormatUint(seq, 36)
}

// Owns reports whether receipt was issued by this ledger (whatever its
// state now).
func (l *Ledger[T]) Owns(receipt string) bool {
	return strings.HasPrefix(receipt, l.id+".")
}

// ParseReceipt reads a receipt some ledger issued; ok is false when s is
// not one. It says nothing of whether the lease is still held: only the
// issuing ledger knows that.
func ParseReceipt(s string) (r Receipt, ok bool) {
	tag, rest, _ := strings.Cut(s, "~")
	f := strings.Split(rest, ".")
	if !only(tag, tagChars) || len(f) != 4 || len(f[0]) != instanceLen || !only(f[0], instanceChars) ||
		!only(f[1], decimalChars) || !only(f[2], decimalChars) || !only(f[3], seqChars) {
		return Receipt{}, false
	}
	p, err1 := strconv.ParseInt(f[1], 10, 32)
	off, err2 := strconv.ParseInt(f[2], 10, 64)
	_, err3 := strconv.ParseUint(f[3], 36, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Receipt{}, false // out of range
	}
	return Receipt{Tag: tag, Partition: int32(p), Offset: off}, true
}

// only reports whether s is non-empty and made of the bytes in set.
func only(s, set string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}
