package config

import (
	"fmt"
	"io"

	"github.com/caarlos0/env/v11"
)

// Var is one environment variable a binary reads, with the default it
// takes when the variable is unset.
type Var struct {
	Key     string
	Default string
}

// Vars lists the variables the env tags of cfgs (pointers to the structs a
// binary loads) name, each once, in tag order. A variable's default is
// computed[key] when the code works it out at startup (a host name, a
// per-service address), else its envDefault tag, else "unset".
func Vars(computed map[string]string, cfgs ...any) ([]Var, error) {
	var vars []Var
	seen := map[string]bool{}
	for _, cfg := range cfgs {
		params, err := env.GetFieldParams(cfg)
		if err != nil {
			return nil, err
		}
		for _, p := range params {
			if seen[p.Key] {
				continue
			}
			seen[p.Key] = true
			def, ok := computed[p.Key]
			switch {
			case ok:
			case p.HasDefaultValue && p.DefaultValue != "":
				def = p.DefaultValue
			default:
				def = "unset"
			}
			vars = append(vars, Var{Key: p.Key, Default: def})
		}
	}
	return vars, nil
}

// WantsHelp reports whether args ask for the usage text rather than a run.
func WantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "help":
			return true
		}
	}
	return false
}

// Help writes what a binary answers to -h or --help: about (what it does,
// ending in a newline), then every variable it reads with its default.
func Help(out io.Writer, about string, vars []Var) error {
	width := 0
	for _, v := range vars {
		width = max(width, len(v.Key))
	}
	if _, err := fmt.Fprint(out, about); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, "Environment variables it reads (defaults in brackets; README.md, \"Configuration\"):"); err != nil {
		return err
	}
	for _, v := range vars {
		if _, err := fmt.Fprintf(out, "  %-*s [%s]\n", width, v.Key, v.Default); err != nil {
			return err
		}
	}
	return nil
}
