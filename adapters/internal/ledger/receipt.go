package ledger

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kchat/kchat/domain"
)

// A receipt names one lease and reads
//
//	<tag>~<instance>.<partition>.<offset>.<seq>.<key id>.<mac>
//
// The tag is the issuing ledger's (the queues use the message type, so a
// replica can tell which of its topics a receipt belongs to); the instance,
// 8 random hex digits, tells apart ledgers with the same tag in different
// processes or lifetimes; seq (base 36) tells apart leases of one record, so
// the receipt of an expired lease stays unknown when the record is leased
// again. The key id names the receipt key (domain.KeyID) and mac is the first 128
// bits, in hex, of HMAC-SHA256 under that key over the consumer group and
// everything before it: a receipt cannot be made up or altered (its type
// swapped, say) without the key, and is good only in the group it was
// issued for (docs/security.md, "Consumer receipts"). This file is the only
// place that knows the format.

const (
	tagChars      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-" // those of a Kafka topic name
	hexChars      = "0123456789abcdef"
	instanceLen   = 8
	keyIDLen      = 8
	macLen        = 32 // hex digits: 128 bits
	decimalChars  = "0123456789"
	seqChars      = "0123456789abcdefghijklmnopqrstuvwxyz"
	macDomain     = "kchat receipt v1\x00"
	receiptFields = 6
)

// MinKeyLen is the shortest receipt key a Signer accepts, in bytes.
const MinKeyLen = 32

// Receipt is what a verified receipt says.
type Receipt struct {
	Tag       string // the tag of the ledger that issued it
	Partition int32
	Offset    int64
}

// Why Verify refuses a receipt.
var (
	// ErrMalformed: the string is not a receipt at all.
	ErrMalformed = errors.New("not a receipt")
	// ErrForged: a receipt under our key id whose mac does not match: made
	// up, altered (its type swapped, say), or issued for another group.
	ErrForged = errors.New("receipt signature does not match")
)

// OtherKeyError is a receipt signed under another key: some process of the
// deployment runs with a different receipt key.
type OtherKeyError struct {
	KeyID, Ours string
}

func (e *OtherKeyError) Error() string {
	return fmt.Sprintf("receipt signed with another key (key id %s, ours %s)", e.KeyID, e.Ours)
}

// Signer signs and verifies the receipts of one consumer group. The
// ledgers of every replica of the group share one, or at least its key.
type Signer struct {
	group string
	key   []byte
	keyID string
}

// NewSigner returns the signer of group's receipts under key, which must
// be at least MinKeyLen bytes. Errors never hold the key.
func NewSigner(group string, key []byte) (*Signer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("receipt key must be at least %d bytes, got %d", MinKeyLen, len(key))
	}
	return &Signer{group: group, key: append([]byte(nil), key...), keyID: domain.KeyID(key)}, nil
}

// KeyID is the id of the signer's key.
func (s *Signer) KeyID() string { return s.keyID }

// mac signs body (a receipt up to its key id) for the signer's group.
func (s *Signer) mac(body string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(macDomain))
	// The group's length first, so no group and body can pass for another.
	m.Write([]byte(strconv.Itoa(len(s.group)) + ":" + s.group + "\x00"))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))[:macLen]
}

// Verify reads a receipt and checks that it was signed with our key for
// our group. The error is ErrMalformed, ErrForged or an *OtherKeyError. A
// receipt that verifies may still not be leased: only the issuing ledger
// knows that.
func (s *Signer) Verify(receipt string) (Receipt, error) {
	tag, rest, _ := strings.Cut(receipt, "~")
	f := strings.Split(rest, ".")
	if !only(tag, tagChars) || len(f) != receiptFields ||
		len(f[0]) != instanceLen || !only(f[0], hexChars) ||
		!only(f[1], decimalChars) || !only(f[2], decimalChars) || !only(f[3], seqChars) ||
		len(f[4]) != keyIDLen || !only(f[4], hexChars) || len(f[5]) != macLen || !only(f[5], hexChars) {
		return Receipt{}, ErrMalformed
	}
	p, err1 := strconv.ParseInt(f[1], 10, 32)
	off, err2 := strconv.ParseInt(f[2], 10, 64)
	_, err3 := strconv.ParseUint(f[3], 36, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Receipt{}, ErrMalformed // out of range
	}
	if f[4] != s.keyID {
		return Receipt{}, &OtherKeyError{KeyID: f[4], Ours: s.keyID}
	}
	body := receipt[:len(receipt)-macLen-1]
	if !hmac.Equal([]byte(f[5]), []byte(s.mac(body))) {
		return Receipt{}, ErrForged
	}
	return Receipt{Tag: tag, Partition: int32(p), Offset: off}, nil
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

// issue returns the signed receipt of lease seq on record offset of p.
func (l *Ledger[T]) issue(p int32, offset int64, seq uint64) string {
	body := l.id + "." + strconv.FormatInt(int64(p), 10) + "." + strconv.FormatInt(offset, 10) + "." +
		strconv.FormatUint(seq, 36) + "." + l.signer.keyID
	return body + "." + l.signer.mac(body)
}

// Owns reports whether receipt was issued by this ledger (whatever its
// state now). It does not verify the receipt: Signer.Verify does.
func (l *Ledger[T]) Owns(receipt string) bool {
	return strings.HasPrefix(receipt, l.id+".")
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
