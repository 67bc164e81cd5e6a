package app

import "testing"

// A sentence ends at . ! ? … or a new line, also before citation markers;
// a clause or a bare marker does not end one.
func TestEndsSentence(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"Run make run. [1] ", true},
		{"Run make run [1].", true},
		{"It does. [1][2]", true},
		{"Really?", true},
		{"A list:\n", true},
		{"Run make run [1]", false},
		{"Run, ", false},
		{"[1]", false},
		{"Odd. []", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := endsSentence(tt.give); got != tt.want {
			t.Errorf("endsSentence(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}
