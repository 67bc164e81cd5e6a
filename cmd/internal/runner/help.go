package runner

import (
	"io"
	"maps"

	"github.com/kchat/kchat/cmd/internal/config"
)

// Help writes a service binary's answer to -h or --help: about, then every
// variable it reads: those of cfg and of the admin listener Main loads
// beside it. computed gives the defaults the code works out at startup
// (config.Vars).
func Help(out io.Writer, service, about string, cfg any, computed map[string]string) error {
	defaults := map[string]string{"KCHAT_ADMIN_ADDR": AdminAddrs[service]}
	maps.Copy(defaults, computed)
	vars, err := config.Vars(defaults, cfg, &AdminConfig{})
	if err != nil {
		return err
	}
	return config.Help(out, about+"It takes no arguments but -h/--help.\n", vars)
}
