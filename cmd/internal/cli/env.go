package cli

import (
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
)

// Alias makes --old (and its variable EnvName(old)) another spelling of
// the flag --name declared before: setting it sets --name, and Parse adds
// a warning that --old is a former name. --help lists it only in the
// usage of --name. Giving both is an error. It panics if --name is not
// declared (a programming error, as with the flag package).
func (f *FlagSet) Alias(old, name string) {
	var target *def
	for _, d := range f.defs {
		if d.name == name {
			target = d
		}
	}
	if target == nil || target.secret != nil {
		panic("cli: Alias of undeclared or secret flag --" + name)
	}
	f.fs.Var(target.value, old, "former name of --"+name)
	target.aliases = append(target.aliases, old)
	target.usage += " (formerly --" + old + ")"
}

// UnknownEnv returns one warning for each variable in environ (KEY=VALUE
// pairs, as os.Environ gives them) that starts with FIRSTRENDER_ but names
// no flag of f (nor a -file variant of a secret, an alias, or one of
// known), with the nearest flag's variable as a suggestion when one is
// close. The values are never included (a misspelt secret stays secret).
// The warnings are sorted by variable name.
func (f *FlagSet) UnknownEnv(environ []string, known ...string) []string {
	names := map[string]bool{}
	var cands []string
	add := func(env string) { names[env] = true; cands = append(cands, env) }
	for _, d := range f.defs {
		add(EnvName(d.name))
		for _, a := range d.aliases {
			add(EnvName(a))
		}
	}
	for _, k := range known {
		names[k] = true
	}
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, envPrefix) || names[k] {
			continue
		}
		msg := fmt.Sprintf("%s is set but no flag of %s reads it: ignored", k, f.name)
		if best := nearest(k, cands); best != "" {
			msg += fmt.Sprintf(" (did you mean %s, i.e. --%s?)", best, flagOfEnv(best))
		}
		out = append(out, msg)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// flagOfEnv turns FIRSTRENDER_MAX_DB_SIZE back into max-db-size.
func flagOfEnv(env string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(env, envPrefix), "_", "-"))
}

// nearest is the candidate closest to s by edit distance, when that
// distance is small enough for a typo (at most 3 and under half the name
// after the prefix); "" otherwise.
func nearest(s string, cands []string) string {
	best, bestD := "", 0
	for _, c := range cands {
		d := editDistance(strings.TrimPrefix(s, envPrefix), strings.TrimPrefix(c, envPrefix))
		if best == "" || d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	limit := min(3, len(strings.TrimPrefix(s, envPrefix))/2)
	if best == "" || bestD > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Version describes the running binary from its build information: the
// main module's version (a tag when built with go install module@version,
// "(devel)" in a work tree), the VCS revision, its time and whether the
// tree had uncommitted changes, and the Go version. name starts the line,
// e.g. "firstrender v1.2.0 (rev 1ab5de8c0d1e, 2026-11-25T20:00:00Z, modified) go1.26.0".
func Version(name string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return name + " (no build information)"
	}
	return formatVersion(name, bi)
}

func formatVersion(name string, bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(unknown)"
	}
	var vcs []string
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	if r := set["vcs.revision"]; r != "" {
		if len(r) > 12 {
			r = r[:12]
		}
		vcs = append(vcs, "rev "+r)
	}
	if t := set["vcs.time"]; t != "" {
		vcs = append(vcs, t)
	}
	if set["vcs.modified"] == "true" {
		vcs = append(vcs, "modified")
	}
	s := name + " " + v
	if len(vcs) > 0 {
		s += " (" + strings.Join(vcs, ", ") + ")"
	}
	return s + " " + bi.GoVersion
}
