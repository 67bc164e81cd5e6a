package profanity_test

import (
	"strings"
	"sync"
	"testing"

	goaway "github.com/TwiN/go-away"

	"github.com/kchat/kchat/adapters/profanity"
)

func TestCensorMasksProfanity(t *testing.T) {
	c := profanity.New(profanity.DefaultConfig())
	tests := []struct {
		give string
		want string
	}{
		{"fuck", "****"},
		{"Fuck", "****"},
		{"FUCK you", "**** you"},
		{"What the fuck?!", "What the ****?!"},
		{"shit.", "****."},
		{"fuck!!!", "****!!!"},
		{"bullshit", "********"},
		{"motherfucker", "************"},
		{"asshole", "*******"},
		{"This classic cockpit is shit", "This classic cockpit is ****"},
		{"The assessment in Essex went to shit.", "The assessment in Essex went to ****."},
		{"sh!t", "****"},
		{"sh1t happens", "**** happens"},
		{"$hit happens", "**** happens"},
		{"@$$h073", "*******"},
		{"Fück", "****"},
		{"naïve  shit\tfaçade\n", "naïve  ****\tfaçade\n"},
		{"«Merde, shit!» — Ça va?", "«Merde, ****!» — Ça va?"},
		{"\xffshit\xfe", "\xff****\xfe"},
		{"shit,fuck;cunt", "****,****;****"},
	}
	for _, tt := range tests {
		got, changed := c.Censor(tt.give)
		if got != tt.want || !changed {
			t.Errorf("Censor(%q) = %q, %v; want %q, true", tt.give, got, changed, tt.want)
		}
	}
}

func TestCensorLeavesInnocentTextAlone(t *testing.T) {
	c := profanity.New(profanity.DefaultConfig())
	tests := []string{
		"",
		"assessment", "Essex", "Middlesex", "Dickens", "cockpit", "Scunthorpe", "classic",
		"assume", "bass", "grape", "therapist", "analysis", "cocktail", "Sussex",
		"shiitake", "Hancock", "pass", "class", "glass",
		"assembly", "embarrassing", "assets", "canal", "analogy", "parse", "arsenic",
		"cocoon", "raccoon", "peacock", "Hitchcock", "succumb", "incumbent", "acumen",
		"drapes", "trapeze", "echoes", "whoever", "restful", "wistful", "sturdy",
		"wristwatch", "saltwater", "muffin", "thorny", "debugger", "footballs",
		"The assessment in Essex went well.",
		"Scunthorpe's classic cockpit, Middlesex & Dickens!",
		"Café crème, naïve façade",
		"日本語のテキスト — Ελληνικά — русский",
		"I was hit by this hit", // folding the space would read "washit", "thishit"
		"I paid $455 for 5 shirts",
		"Sextant, sextet and sexton",
		"\xff\xfe not UTF-8",
	}
	for _, give := range tests {
		if got, changed := c.Censor(give); got != give || changed {
			t.Errorf("Censor(%q) = %q, %v; want it unchanged, false", give, got, changed)
		}
	}
}

// The allow-list must not swallow what go-away rightly catches.
func TestCensorKeepsEveryGoAwayProfanity(t *testing.T) {
	c := profanity.New(profanity.DefaultConfig())
	words := append([]string{"fucking", "cocksucker", "dumbass", "jackass", "bitches", "shitty"},
		goaway.DefaultProfanities...)
	words = append(words, goaway.DefaultFalseNegatives...)
	for _, w := range words {
		want := strings.Repeat("*", len(w))
		if got, changed := c.Censor(w); got != want || !changed {
			t.Errorf("Censor(%q) = %q, %v; want %q, true", w, got, changed, want)
		}
	}
}

func TestCensorExtraAllowed(t *testing.T) {
	cfg := profanity.DefaultConfig()
	if got, _ := profanity.New(cfg).Censor("Mr Cummings"); got != "Mr ********" {
		t.Fatalf("without ExtraAllowed: Censor = %q, want the surname masked", got)
	}
	cfg.ExtraAllowed = []string{" Cummings ", ""}
	c := profanity.New(cfg)
	tests := []struct {
		give        string
		want        string
		wantChanged bool
	}{
		{"Mr Cummings", "Mr Cummings", false},
		{"CUMMINGS", "CUMMINGS", false},
		{"Cummings said shit", "Cummings said ****", true},
		{"cum", "***", true},
	}
	for _, tt := range tests {
		got, changed := c.Censor(tt.give)
		if got != tt.want || changed != tt.wantChanged {
			t.Errorf("Censor(%q) = %q, %v; want %q, %v", tt.give, got, changed, tt.want, tt.wantChanged)
		}
	}
}

func TestCensorDisabled(t *testing.T) {
	cfg := profanity.DefaultConfig()
	cfg.Enabled = false
	c := profanity.New(cfg)
	for _, give := range []string{"fuck this shit", "", "assessment"} {
		if got, changed := c.Censor(give); got != give || changed {
			t.Errorf("disabled: Censor(%q) = %q, %v; want it unchanged, false", give, got, changed)
		}
	}
}

func TestCensorConcurrentUse(t *testing.T) {
	c := profanity.New(profanity.DefaultConfig())
	gives := []string{"fuck this", "The assessment in Essex went well.", "Café shit", "classic cockpit", ""}
	wants := make([]string, len(gives))
	for i, give := range gives {
		wants[i], _ = c.Censor(give)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g + i) % len(gives)
				if got, _ := c.Censor(gives[k]); got != wants[k] {
					t.Errorf("goroutine %d: Censor(%q) = %q, want %q", g, gives[k], got, wants[k])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestConfigValidate(t *testing.T) {
	valid := profanity.DefaultConfig()
	valid.ExtraAllowed = []string{"Cummings", " Essex ", ""}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, give := range []string{"New York", "café", "b4ss", "a-b"} {
		c := profanity.DefaultConfig()
		c.ExtraAllowed = []string{give}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "KCHAT_PROFANITY_ALLOW") {
			t.Errorf("Validate(%q) = %v, want an error naming KCHAT_PROFANITY_ALLOW", give, err)
		}
	}
}

// 1 KiB of chat text: clean, with one profanity, and with one in every
// sentence.
func BenchmarkCensor1KiB(b *testing.B) {
	const (
		clean   = "The assessment in Essex went well; the classic cockpit tour was a hit. Café crème for all! "
		profane = "The assessment in Essex went to shit; the classic cockpit tour was a hit. Café crème, fuck! "
	)
	repeat := func(s string, n int) string {
		return strings.ToValidUTF8(strings.Repeat(s, n/len(s)+1)[:n], "")
	}
	c := profanity.New(profanity.DefaultConfig())
	for _, bm := range []struct {
		name string
		text string
	}{
		{"clean", repeat(clean, 1024)},
		{"one", repeat(clean, 1024-len(profane)) + profane},
		{"every-sentence", repeat(profane, 1024)},
		{"every-sentence-ascii", repeat(strings.NewReplacer("é", "e", "è", "e").Replace(profane), 1024)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(bm.text)))
			for b.Loop() {
				c.Censor(bm.text)
			}
		})
	}
}
