// Package cli reads the command line of the service's programs. They take
// their configuration from environment variables, so the only arguments are
// -version and -help, and anything else is a usage error.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"{{ cookiecutter.module_path }}/internal/buildinfo"
)

// Exit codes of ParseArgs, following the flag package: 2 for a usage error.
const (
	exitOK    = 0
	exitUsage = 2
)

// ParseArgs handles the arguments of the program called name (without the
// program name itself). It returns false when the program should go on
// running. Otherwise it has printed the version, the help or a usage error,
// and the program should exit with code. summary is one sentence saying what
// the program does.
func ParseArgs(name, summary string, args []string, stdout, stderr io.Writer) (exit bool, code int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	version := fs.Bool("version", false, "print the build stamp and exit")
	usageLine := fmt.Sprintf("usage: %s [-version] [-help]", name)

	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, summary, usageLine)
		return true, exitOK
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n%s\n", name, err, usageLine)
		return true, exitUsage
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n%s\n", name, fs.Arg(0), usageLine)
		return true, exitUsage
	case *version:
		info := buildinfo.Get()
		fmt.Fprintf(stdout, "%s %s (commit %s, built %s, %s)\n",
			name, info.Version, info.Commit, info.BuildDate, info.GoVersion)
		return true, exitOK
	}
	return false, exitOK
}

func printHelp(w io.Writer, summary, usageLine string) {
	fmt.Fprintf(w, `%s

%s

Configuration comes from environment variables only; the README lists each
variable with its default.

Options:
  -version, --version   print the version, commit, build date and Go version, then exit
  -h, -help, --help     print this help, then exit
`, usageLine, summary)
}
