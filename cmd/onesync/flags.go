package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/setera/onesync/logging"
)

// errHelp is returned when -h asked for a command's usage.
var errHelp = errors.New("help requested")

// usageError is a flag that does not exist or does not parse. The flag
// package has already printed it with the usage.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// configError is a value that parsed but cannot be used: a port that is
// taken, a folder that cannot be written, a level that does not exist.
type configError struct{ err error }

func (e *configError) Error() string { return "invalid configuration: " + e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func configErrorf(format string, args ...any) error {
	return &configError{fmt.Errorf(format, args...)}
}

// envPrefix starts the name of every environment variable OneSync reads.
const envPrefix = "ONESYNC_"

// envName is the variable that sets a flag: --temporal-address is read
// from ONESYNC_TEMPORAL_ADDRESS.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// How a flag's value is shown when the configuration is printed.
type display int

const (
	plain  display = iota
	secret         // shown as "set" or "unset", never the value
	dsn            // a URL whose password is masked
)

// flags is a subcommand's flag set that also reads ONESYNC_* variables and
// prints the resulting configuration without secrets.
type flags struct {
	cmd     string
	fs      *flag.FlagSet
	display map[string]display
	source  map[string]string // flag name: "flag", "env" or "default"
}

func newFlags(cmd, synopsis string, stderr io.Writer) *flags {
	f := &flags{
		cmd:     cmd,
		fs:      flag.NewFlagSet("onesync "+cmd, flag.ContinueOnError),
		display: map[string]display{},
		source:  map[string]string{},
	}
	f.fs.SetOutput(stderr)
	f.fs.Usage = func() {
		out := f.fs.Output()
		fmt.Fprintf(out, "Usage: onesync %s [flags]\n\n%s\n\nFlags (environment variable in brackets):\n",
			cmd, synopsis)
		f.fs.VisitAll(func(fl *flag.Flag) {
			def := ""
			if fl.DefValue != "" && fl.DefValue != "false" && f.display[fl.Name] != secret {
				def = fmt.Sprintf(" (default %s)", fl.DefValue)
			}
			fmt.Fprintf(out, "  --%s [%s]\n      %s%s\n", fl.Name, envName(fl.Name), fl.Usage, def)
		})
	}
	return f
}

// secret marks a flag whose value must never be printed.
func (f *flags) secret(name string) { f.display[name] = secret }

// dsn marks a flag that holds a database URL with a possible password.
func (f *flags) dsn(name string) { f.display[name] = dsn }

// parse reads args, then fills every flag not given on the command line
// from its environment variable. Positional arguments are refused: no
// subcommand takes any.
func (f *flags) parse(args []string, getenv func(string) string) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return &usageError{err}
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(f.fs.Output(), "unexpected argument %q\n", f.fs.Arg(0))
		f.fs.Usage()
		return &usageError{fmt.Errorf("unexpected argument %q", f.fs.Arg(0))}
	}

	f.fs.VisitAll(func(fl *flag.Flag) { f.source[fl.Name] = "default" })
	f.fs.Visit(func(fl *flag.Flag) { f.source[fl.Name] = "flag" })

	var errs []error
	f.fs.VisitAll(func(fl *flag.Flag) {
		if f.source[fl.Name] == "flag" {
			return
		}
		v := getenv(envName(fl.Name))
		if v == "" {
			return
		}
		if err := fl.Value.Set(v); err != nil {
			shown := v
			if f.display[fl.Name] == secret {
				shown = "(hidden)"
			}
			errs = append(errs, fmt.Errorf("%s=%s: %w", envName(fl.Name), shown, err))
			return
		}
		f.source[fl.Name] = "env"
	})
	if len(errs) > 0 {
		return &configError{errors.Join(errs...)}
	}
	return nil
}

// fields returns the configuration as log fields, sorted by name, secrets
// as "set" or "unset" and passwords in URLs masked.
func (f *flags) fields() []zap.Field {
	var names []string
	f.fs.VisitAll(func(fl *flag.Flag) { names = append(names, fl.Name) })
	sort.Strings(names)

	out := make([]zap.Field, 0, len(names))
	for _, name := range names {
		v := f.fs.Lookup(name).Value.String()
		switch f.display[name] {
		case secret:
			if v == "" {
				v = "unset"
			} else {
				v = "set"
			}
		case dsn:
			v = redactDSN(v)
		}
		out = append(out, zap.String(name, v))
	}
	return out
}

// log prints the configuration once at start.
func (f *flags) log(logger *zap.Logger) {
	logger.Info("configuration", append([]zap.Field{zap.String("command", f.cmd)},
		f.fields()...)...)
}

// redactDSN masks the password of a postgres:// URL, in its user part or
// its query; a sqlite: path has none and is shown as is.
func redactDSN(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// commandConfig is the configuration of one subcommand.
type commandConfig interface {
	register(f *flags)
	validate() error
	logSettings() logConfig
}

// setUp reads and validates a subcommand's configuration from args and
// the environment, then builds its logger. The caller syncs the logger.
func setUp(env *runEnv, name, help string, cfg commandConfig, args []string) (
	*flags, *zap.Logger, error) {
	f := newFlags(name, help, env.stderr)
	cfg.register(f)
	if err := f.parse(args, env.getenv); err != nil {
		return nil, nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	lc := cfg.logSettings()
	logger, err := logging.New(lc.Format, lc.Level)
	if err != nil {
		return nil, nil, configErrorf("%w", err)
	}
	return f, logger, nil
}
