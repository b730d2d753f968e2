// Package cli is the command-line convention shared by firstrender's
// binaries (cmd/server, cmd/admin and its subcommands):
//
//   - Flags are spelled --name (the flag package also accepts -name) and
//     every flag has an environment variable derived from its name:
//     FIRSTRENDER_ + upper case, '-' → '_' (--max-db-size ↔
//     FIRSTRENDER_MAX_DB_SIZE). A flag on the command line wins over its
//     variable, which wins over the default.
//   - Errors name the flag (and the variable when the value came from
//     there) and say what was wrong.
//   - Secrets ([FlagSet.Secret]) come from a file (--name-file, or
//     FIRSTRENDER_NAME_FILE) or the environment (FIRSTRENDER_NAME). They
//     are never required on the command line, where they are visible to
//     every local user in ps; given there anyway they work, with a warning
//     ([FlagSet.Warnings]). They are never printed: not in --help, not in
//     [FlagSet.WriteConfig], not in errors.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// envPrefix starts every environment variable name.
const envPrefix = "FIRSTRENDER_"

// EnvName is the environment variable of the flag called name.
func EnvName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// ErrHelp is returned by [FlagSet.Parse] when -h or --help was given; the
// usage has then been written to the FlagSet's output.
var ErrHelp = flag.ErrHelp

// Redacted is what [FlagSet.WriteConfig] prints for a secret that is set.
const Redacted = "[redacted]"

// Value is a flag value: the flag package's interface.
type Value = flag.Value

// FlagSet is a set of flags following the convention above. Declare flags
// with Var and Secret, then call Parse once. It is not safe for concurrent
// use.
type FlagSet struct {
	name   string
	header string
	out    io.Writer
	fs     *flag.FlagSet
	defs   []*def
	warns  []string
}

type def struct {
	name, usage string
	value       Value
	source      string // "" (default), "flag", "env NAME", "file PATH"
	secret      *secret
	aliases     []string // former names (Alias)
}

// secret is the state of one Secret declaration.
type secret struct {
	p        *string
	value    string // from the command line
	file     string // from --name-file
	fromFlag bool
}

// NewFlagSet returns an empty FlagSet. name is used in messages; header is
// printed above the flag list by --help (it should say what the command
// does and how it is called); out receives the usage on --help (nil:
// os.Stderr).
func NewFlagSet(name, header string, out io.Writer) *FlagSet {
	if out == nil {
		out = os.Stderr
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := &FlagSet{name: name, header: header, out: out, fs: fs}
	fs.Usage = func() {}
	return f
}

// Var declares the flag --name bound to v, with the environment variable
// EnvName(name). v's value when Parse is called is the default --help
// shows. usage is one line; a word in `backquotes` names the argument in
// --help, as with the flag package.
func (f *FlagSet) Var(v Value, name, usage string) {
	f.fs.Var(v, name, usage)
	f.defs = append(f.defs, &def{name: name, usage: usage, value: v})
}

// Secret declares the secret called name, stored into *p by Parse: from
// --name-file PATH or FIRSTRENDER_NAME_FILE (the file's content with
// surrounding white space trimmed; an empty file is an error), or from
// FIRSTRENDER_NAME. --name VALUE works too but adds a warning: the value
// is then visible in ps. Giving the secret twice at the same level (both
// --name and --name-file, or both variables) is an error; the command line
// wins over the environment. *p is left as it is when none is given.
func (f *FlagSet) Secret(p *string, name, usage string) {
	s := &secret{p: p}
	val := &secretValue{s}
	file := &fileValue{s}
	f.fs.Var(val, name, usage+" (visible in ps: prefer --"+name+"-file or "+EnvName(name)+")")
	f.fs.Var(file, name+"-file", "`file` holding "+name)
	f.defs = append(f.defs,
		&def{name: name, usage: usage + " (visible in ps: prefer --" + name + "-file or " + EnvName(name) + ")", value: val, secret: s},
		&def{name: name + "-file", usage: "`file` holding --" + name + " (the secret, trimmed)", value: file, secret: s},
	)
}

// secretValue is --name of a Secret: it never prints the secret.
type secretValue struct{ s *secret }

func (v *secretValue) String() string { return "" }
func (v *secretValue) Set(s string) error {
	v.s.value, v.s.fromFlag = s, true
	return nil
}

// fileValue is --name-file of a Secret.
type fileValue struct{ s *secret }

func (v *fileValue) String() string {
	if v.s == nil {
		return ""
	}
	return v.s.file
}
func (v *fileValue) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("want a file name")
	}
	v.s.file = s
	return nil
}

// Parse reads args (without the program or subcommand name), then the
// environment through lookupEnv (os.LookupEnv in a main) for every flag
// not given on the command line, then resolves the secrets. With -h or
// --help it writes the usage and returns ErrHelp. Positional arguments
// are left in [FlagSet.Args].
func (f *FlagSet) Parse(args []string, lookupEnv func(string) (string, bool)) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.WriteUsage(f.out)
			return ErrHelp
		}
		return fixFlagErr(err)
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for _, d := range f.defs {
		for _, a := range d.aliases {
			if set[a] && set[d.name] {
				return fmt.Errorf("--%s and --%s (its former name) both given: give --%s", d.name, a, d.name)
			}
			if set[a] {
				set[d.name] = true
				f.warns = append(f.warns, fmt.Sprintf("--%s is a former name: use --%s", a, d.name))
			}
		}
		if set[d.name] {
			d.source = "flag"
			continue
		}
		env := EnvName(d.name)
		v, ok := lookupEnv(env)
		for _, a := range d.aliases {
			if av, aok := lookupEnv(EnvName(a)); aok {
				if ok {
					return fmt.Errorf("%s and %s (its former name) both set: set %s", env, EnvName(a), env)
				}
				env, v, ok = EnvName(a), av, true
				f.warns = append(f.warns, fmt.Sprintf("%s is a former name: use %s", env, EnvName(d.name)))
			}
		}
		if !ok {
			continue
		}
		if d.secret != nil {
			continue // resolved below, with their own precedence
		}
		if err := d.value.Set(v); err != nil {
			return fmt.Errorf("invalid value %q for %s (--%s): %v", v, env, d.name, err)
		}
		d.source = "env " + env
	}
	for i := 0; i < len(f.defs); i++ {
		d := f.defs[i]
		if d.secret == nil {
			continue
		}
		i++ // the -file def follows
		if err := f.resolve(d, f.defs[i], lookupEnv); err != nil {
			return err
		}
	}
	return nil
}

// resolve fills a secret: command line first (value or file), then the
// environment (value or file).
func (f *FlagSet) resolve(val, file *def, lookupEnv func(string) (string, bool)) error {
	s := val.secret
	name := val.name
	switch {
	case s.fromFlag && file.source == "flag":
		return fmt.Errorf("--%s and --%s-file both given: give one", name, name)
	case s.fromFlag:
		f.warns = append(f.warns, fmt.Sprintf("--%s was given on the command line, where any local user can read it (ps, /proc); use --%s-file or %s", name, name, EnvName(name)))
		*s.p = s.value
		return nil
	case file.source == "flag":
		v, err := readSecret(s.file)
		if err != nil {
			return fmt.Errorf("--%s-file: %w", name, err)
		}
		*s.p = v
		file.source = "file " + s.file
		return nil
	}
	env, envFile := EnvName(name), EnvName(name+"-file")
	v, okV := lookupEnv(env)
	path, okF := lookupEnv(envFile)
	switch {
	case okV && okF:
		return fmt.Errorf("%s and %s both set: set one", env, envFile)
	case okV:
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s is set but empty", env)
		}
		*s.p = v
		val.source = "env " + env
	case okF:
		v, err := readSecret(path)
		if err != nil {
			return fmt.Errorf("%s (--%s-file): %w", envFile, name, err)
		}
		s.file = path
		*s.p = v
		file.source = "env " + envFile
	}
	return nil
}

// maxSecretFile bounds what readSecret reads: a secret is a line, not a file.
const maxSecretFile = 64 << 10

func readSecret(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s is larger than %d bytes: not a secret", path, maxSecretFile)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// Name is the name given to NewFlagSet.
func (f *FlagSet) Name() string { return f.name }

// Args returns the positional arguments left after Parse.
func (f *FlagSet) Args() []string { return f.fs.Args() }

// Warnings returns what Parse found worth telling the operator (a secret
// given on the command line), one sentence each, naming no secret value.
func (f *FlagSet) Warnings() []string { return f.warns }

// fixFlagErr rewrites the flag package's "-name" spelling to "--name", the
// form --help shows.
func fixFlagErr(err error) error {
	msg := err.Error()
	msg = strings.Replace(msg, "for flag -", "for flag --", 1)
	msg = strings.Replace(msg, "flag provided but not defined: -", "unknown flag --", 1)
	msg = strings.Replace(msg, "flag needs an argument: -", "flag needs a value: --", 1)
	return errors.New(msg)
}

// WriteUsage prints the header, then every flag with its variable, usage
// and default (secrets show none).
func (f *FlagSet) WriteUsage(w io.Writer) {
	if f.header != "" {
		fmt.Fprintln(w, strings.TrimRight(f.header, "\n"))
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "Every flag can also be set by the environment variable in brackets; a flag on\nthe command line wins over the variable. Secrets are read from --name-file or\nthe environment, never needed on the command line.\n\n")
	for _, d := range f.defs {
		fl := &flag.Flag{Name: d.name, Usage: d.usage, Value: d.value}
		arg, usage := flag.UnquoteUsage(fl)
		if b, ok := d.value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			arg = ""
		}
		line := "  --" + d.name
		if arg != "" {
			line += " " + arg
		}
		fmt.Fprintf(w, "%s  [%s]\n    \t%s", line, EnvName(d.name), usage)
		if def := d.value.String(); def != "" {
			fmt.Fprintf(w, " (default %q)", def)
		}
		fmt.Fprintln(w)
	}
}

// Flag is one declared flag as [FlagSet.Flags] reports it.
type Flag struct {
	Name  string // without dashes
	Env   string // its environment variable
	Usage string
	// Value is the flag's current value as Set reads it back; for a
	// secret it is Redacted when set, else "".
	Value string
	// Source is where the value came from: "default", "flag", "env NAME"
	// or "file PATH".
	Source string
}

// Flags lists the declared flags in declaration order with their current
// values (after Parse: the effective ones).
func (f *FlagSet) Flags() []Flag {
	out := make([]Flag, 0, len(f.defs))
	for _, d := range f.defs {
		v := d.value.String()
		if _, ok := d.value.(*secretValue); ok && *d.secret.p != "" {
			v = Redacted
		}
		src := d.source
		if src == "" {
			src = "default"
		}
		out = append(out, Flag{Name: d.name, Env: EnvName(d.name), Usage: d.usage, Value: v, Source: src})
	}
	return out
}

// WriteConfig prints the effective configuration, one "--name=value"
// line per flag with where it came from; secrets are redacted. The
// output is valid command-line syntax for everything but secrets.
func (f *FlagSet) WriteConfig(w io.Writer) {
	for _, fl := range f.Flags() {
		fmt.Fprintf(w, "--%s=%q\t# %s\n", fl.Name, fl.Value, fl.Source)
	}
}
