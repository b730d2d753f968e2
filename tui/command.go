package tui

import (
	"fmt"
	"strings"

	"github.com/firstrender/firstrender/httpcache/admin"
)

// command is one parsed ":" line.
type command struct {
	name  string // "decode", "purge", "stats", "help", "quit", "refresh"
	token string // decode: the pasted token ("" opens the paste box)
	purge admin.PurgeRequest
	what  string // purge: the selector as the dialog names it
}

// parseCommand reads the ":" prompt:
//
//	decode [TOKEN]            decode a pasted Phoenix token
//	purge key KEY             every variant of one normalized key
//	purge prefix PREFIX       every key starting with PREFIX
//	purge tag TAG             every entry carrying TAG
//	purge all                 everything (asks for a typed confirmation)
//	stats | cluster | help | refresh | quit (q)
//
// Errors name the command and what it expected.
func parseCommand(line string) (command, error) {
	line = strings.TrimSpace(line)
	name, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	switch name {
	case "decode":
		return command{name: "decode", token: strings.Join(strings.Fields(rest), "")}, nil
	case "stats", "help", "refresh", "cluster":
		if rest != "" {
			return command{}, fmt.Errorf(":%s takes no argument", name)
		}
		return command{name: name}, nil
	case "q", "quit":
		return command{name: "quit"}, nil
	case "purge":
		sel, arg, _ := strings.Cut(rest, " ")
		arg = strings.TrimSpace(arg)
		var c command
		c.name = "purge"
		switch sel {
		case "key":
			c.purge.Key, c.what = arg, "key "+arg
		case "prefix":
			c.purge.Prefix, c.what = arg, "prefix "+arg
		case "tag":
			c.purge.Tag, c.what = arg, "tag "+arg
		case "all":
			if arg != "" {
				return command{}, fmt.Errorf(":purge all takes no argument")
			}
			c.purge.All, c.what = true, "ALL entries"
			return c, nil
		case "":
			return command{}, fmt.Errorf(":purge needs key KEY, prefix PREFIX, tag TAG or all")
		default:
			return command{}, fmt.Errorf(":purge %s: unknown selector (key, prefix, tag, all)", sel)
		}
		if arg == "" {
			return command{}, fmt.Errorf(":purge %s needs a value", sel)
		}
		if len(arg) > admin.MaxPrefix {
			return command{}, fmt.Errorf(":purge %s: longer than %d bytes", sel, admin.MaxPrefix)
		}
		return c, nil
	case "":
		return command{}, fmt.Errorf("empty command")
	}
	return command{}, fmt.Errorf("unknown command :%s (decode, purge, stats, cluster, help, refresh, quit)", clean(name))
}
