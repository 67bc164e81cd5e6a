package ports

// Censor masks profanity in user text.
//
// Censor returns text with every profane word masked and whether anything
// was masked. It never fails and never blocks; safe for concurrent use.
// Words that merely contain a profane substring ("assessment", "Scunthorpe")
// are left untouched.
type Censor interface {
	Censor(text string) (censored string, changed bool)
}
