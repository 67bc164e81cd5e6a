// Package profanity is kchat's ports.Censor, built on go-away's word lists:
// it masks each profane word with '*' rune for rune, keeps every other byte
// of the text, and lets through innocent words the lists would catch
// ("assessment", "Essex", "cockpit").
package profanity
