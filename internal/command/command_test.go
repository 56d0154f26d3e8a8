package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain runs Main itself when the test binary is started as the command under test.
func TestMain(m *testing.M) {
	if os.Getenv("FAULTLINE_COMMAND_TEST") == "1" {
		os.Exit(Main("faultline-test", load, usage, run))
	}
	os.Exit(m.Run())
}

type settings struct{ fail bool }

func bind(fs *flag.FlagSet, s *settings) { fs.BoolVar(&s.fail, "fail", false, "make the work fail") }

func load(args []string, getenv func(string) string) (settings, error) {
	var s settings
	fs := flag.NewFlagSet("faultline-test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	bind(fs, &s)
	return s, fs.Parse(args)
}

func usage(w io.Writer) {
	fs := flag.NewFlagSet("faultline-test", flag.ContinueOnError)
	fs.SetOutput(w)
	bind(fs, &settings{})
	fs.PrintDefaults()
}

func run(ctx context.Context, s settings) error {
	if s.fail {
		return errors.New("the work failed")
	}
	return nil
}

func TestExitStatusAndOutput(t *testing.T) {
	for _, c := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"--version"}, 0, "faultline-test "},
		{[]string{"--help"}, 0, "Usage: faultline-test [flags]"},
		{[]string{"--help"}, 0, "make the work fail"},
		{[]string{"--bogus"}, 2, "faultline-test: invalid configuration:\nflag provided but not defined: -bogus"},
		{[]string{"--fail"}, 1, "faultline-test: the work failed"},
		{nil, 0, ""},
	} {
		t.Run(fmt.Sprint(c.args), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], c.args...)
			cmd.Env = append(os.Environ(), "FAULTLINE_COMMAND_TEST=1")
			out, err := cmd.CombinedOutput()
			status := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				status = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != c.status || !strings.Contains(string(out), c.want) {
				t.Errorf("exit status %d, output %q; want %d and %q", status, out, c.status, c.want)
			}
		})
	}
}
