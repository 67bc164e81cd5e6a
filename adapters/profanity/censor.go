package profanity

import (
	"iter"
	"strings"
	"unicode"
	"unicode/utf8"

	goaway "github.com/TwiN/go-away"

	"github.com/kchat/kchat/ports"
)

var _ ports.Censor = (*Censor)(nil)

// Censor masks the words go-away finds profane. Safe for concurrent use: the
// go-away detectors are only read after New.
type Censor struct {
	enabled bool
	// go-away builds an 8 KiB accent-folding transformer on every call
	// while folding is on, though folding never changes ASCII text: ASCII
	// goes to a detector with it off.
	detector, asciiDetector *goaway.ProfanityDetector
}

// New returns a Censor using go-away's profanities and false positives, the
// built-in allow-list and cfg.ExtraAllowed.
func New(cfg Config) *Censor {
	fp := make([]string, 0, len(cfg.ExtraAllowed)+len(allowed)+len(goaway.DefaultFalsePositives))
	for _, w := range cfg.ExtraAllowed {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			fp = append(fp, w)
		}
	}
	// Whole words first: go-away removes false positives in order, and a
	// short fragment removed earlier could cut a longer entry apart.
	fp = append(fp, allowed...)
	fp = append(fp, goaway.DefaultFalsePositives...)
	detector := func() *goaway.ProfanityDetector {
		return goaway.NewProfanityDetector().
			// Folding spaces makes "was hit" read as "washit", so "shit" would
			// be found across two innocent words; words are checked apart.
			WithSanitizeSpaces(false).
			WithCustomDictionary(goaway.DefaultProfanities, fp, goaway.DefaultFalseNegatives)
	}
	return &Censor{
		enabled:       cfg.Enabled,
		detector:      detector(),
		asciiDetector: detector().WithSanitizeAccents(false),
	}
}

// Censor returns text with each profane word replaced by as many '*' as it
// has runes; every other byte is kept. go-away's own Censor is not used: it
// masks across word boundaries and, on non-ASCII text, can mask the runes
// next to a profanity instead of the profanity.
func (c *Censor) Censor(text string) (string, bool) {
	// No profanity or false positive spans a separator, so a word that is
	// profane alone is found in the whole text too: clean texts, most of
	// them, cost one scan.
	if !c.enabled || !c.isProfane(text) {
		return text, false
	}
	var b strings.Builder
	kept := 0 // text[:kept] is in b
	for start, end := range words(text) {
		from, to, ok := c.mask(text[start:end])
		if !ok {
			continue
		}
		from, to = start+from, start+to
		b.WriteString(text[kept:from])
		b.WriteString(strings.Repeat("*", utf8.RuneCountInString(text[from:to])))
		kept = to
	}
	if b.Len() == 0 {
		return text, false
	}
	b.WriteString(text[kept:])
	return b.String(), true
}

// mask reports whether word is profane and which bytes of it to mask: its
// letters and digits alone when they are profane ("shit!" keeps its '!'),
// else the whole word, whose edge symbols spell letters ("$hit").
func (c *Censor) mask(word string) (from, to int, ok bool) {
	// Numbers read as leetspeak ("455") are not words.
	if !strings.ContainsFunc(word, unicode.IsLetter) || !c.isProfane(word) {
		return 0, 0, false
	}
	from = len(word) - len(strings.TrimLeftFunc(word, isLeet))
	core := strings.TrimRightFunc(word[from:], isLeet)
	if len(core) < len(word) && c.isProfane(core) {
		return from, from + len(core), true
	}
	return 0, len(word), true
}

func (c *Censor) isProfane(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return c.detector.IsProfane(s)
		}
	}
	return c.asciiDetector.IsProfane(s)
}

// words yields the start and end byte offsets of each word in text: a run of
// letters, digits, marks and leetspeak symbols.
func words(text string) iter.Seq2[int, int] {
	return func(yield func(int, int) bool) {
		start := -1
		for i, r := range text {
			inWord := unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) || isLeet(r)
			switch {
			case inWord && start < 0:
				start = i
			case !inWord && start >= 0:
				if !yield(start, i) {
					return
				}
				start = -1
			}
		}
		if start >= 0 {
			yield(start, len(text))
		}
	}
}

// leet holds the symbols go-away reads as letters ('$' as s, '@' as a). They
// belong to the word around them, so "sh!t" is one word.
var leet = func() map[rune]bool {
	m := make(map[rune]bool)
	for r, to := range goaway.DefaultCharacterReplacements {
		if to != ' ' && !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			m[r] = true
		}
	}
	return m
}()

func isLeet(r rune) bool { return leet[r] }
