// Command s3envelope is the operator's tool for client-side encrypted S3
// objects: it makes master keys, encrypts and uploads, downloads and
// decrypts, shows an object's envelope, rotates master keys in place,
// verifies that a bucket still decrypts, and shares an object through a
// presigned URL. It is built on the s3envelope library (package s3crypto)
// and reads and writes the objects AWS's S3 Encryption Clients do.
//
//	go install github.com/s3envelope/s3envelope/cmd/s3envelope@latest
//	s3envelope help
//
// Objects are named s3://bucket/key. Credentials, region and profile come
// from the AWS SDK's usual chain (environment, ~/.aws/config and
// credentials, SSO, instance roles), with --profile, --region and
// --endpoint-url as in the AWS CLI.
//
// Master keys (--key, repeatable where several may be given; rewrap takes
// the key to rotate to as --new-key and the keys to rotate from as
// --old-key, in the same forms):
//   - a file: an AES key (16, 24 or 32 bytes, hex, base64 or raw) or an RSA
//     key in PEM (a private key; for writing, a public key is enough);
//   - env:NAME: the same, read from the environment variable NAME;
//   - kms:ID: an AWS KMS key ID, ARN or alias (--kms-endpoint-url for a
//     KMS-compatible server).
//
// An AES or RSA key is found by its description (--desc k=v[,k=v...], given
// once per --key in the same order; --new-desc, --old-desc for rewrap),
// which is stored with every object. To read with a single AES or RSA key,
// --desc may be left out: the object's stored description then only says
// which key to try, and a wrong key fails to authenticate.
//
// Exit status: 0 when everything asked was done; 1 when an object (or
// several) failed — it would not decrypt, was not encrypted, or the walk was
// interrupted; 2 for a usage or setup error (bad flags, a missing key file,
// an endpoint the command refuses). Errors are one line on stderr. Progress
// goes to stderr: a bar with rate and ETA on a terminal, plain lines
// otherwise (none with --quiet); --json writes the result to stdout as JSON.
// Key bytes are never printed.
//
// Ctrl-C stops cleanly: uploads in progress are aborted, walks write their
// checkpoint (with --resume FILE), a download to a file leaves no file; a
// second Ctrl-C exits at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the process
	}()
	code := run(ctx, os.Args[1:], &console{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// console is what a command reads and writes besides S3: tests give their
// own.
type console struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1 // an object (or several) failed, or the work was interrupted
	exitUsage   = 2 // bad usage or setup: nothing was attempted
	programName = "s3envelope"
)

// errUsage marks an error in how the command was called (exit 2, with the
// subcommand's usage); errSetup one in what it was given to work with (exit
// 2: a missing key file, an endpoint refused).
var (
	errUsage = errors.New("usage")
	errSetup = errors.New("setup")
)

// usageErr and setupErr wrap a message so that it exits 2 but prints only
// the message.
func usageErr(format string, args ...any) error {
	return &classified{kind: errUsage, err: fmt.Errorf(format, args...)}
}

func setupErr(err error) error {
	if err == nil {
		return nil
	}
	var c *classified
	if errors.As(err, &c) {
		return err
	}
	return &classified{kind: errSetup, err: err}
}

type classified struct {
	kind error
	err  error
}

func (c *classified) Error() string        { return c.err.Error() }
func (c *classified) Unwrap() []error      { return []error{c.kind, c.err} }
func (c *classified) Is(target error) bool { return target == c.kind }

// command is one subcommand.
type command struct {
	name     string
	summary  string // one line, for the list of commands
	usage    string // the synopsis: arguments after the command's name
	help     string // what it does, how, and examples
	register func(fs *flag.FlagSet) func(ctx context.Context, g *globals, args []string) error
}

// commands are the subcommands, registered by the files that implement
// them (init functions), so that each stays in one file.
var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("s3envelope: two commands named " + c.name)
	}
	commands[c.name] = c
}

// run is the program: it returns the exit status.
func run(ctx context.Context, args []string, con *console) int {
	if len(args) == 0 {
		printOverview(con.stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(rest) > 0 {
			if c, ok := commands[rest[0]]; ok {
				fs, _ := newFlagSet(c, con)
				c.register(fs) // the command's own flags, for the list
				fs.SetOutput(con.stdout)
				fs.Usage()
				return exitOK
			}
			fmt.Fprintf(con.stderr, "%s: no command %q\n", programName, rest[0])
			return exitUsage
		}
		printOverview(con.stdout)
		return exitOK
	case "-version", "--version", "version":
		fmt.Fprintln(con.stdout, programName, version())
		return exitOK
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(con.stderr, "%s: no command %q; run '%s help' for the list\n", programName, name, programName)
		return exitUsage
	}
	fs, g := newFlagSet(c, con)
	action := c.register(fs)
	positional, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage // the flag package printed the error and the usage
	}
	err = action(ctx, g, positional)
	return report(con, c, fs, err)
}

// parseInterspersed parses flags before and after the arguments, as the
// AWS CLI takes them (s3envelope verify s3://bucket --key k), which the
// flag package alone does not: it stops at the first argument. After "--"
// everything is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// report prints err as one line and returns the exit status for it.
func report(con *console, c *command, fs *flag.FlagSet, err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(con.stderr, "%s %s: %v\n", programName, c.name, oneLine(err))
		fmt.Fprintf(con.stderr, "usage: %s %s %s (see '%s help %s')\n", programName, c.name, c.usage, programName, c.name)
		return exitUsage
	case errors.Is(err, errSetup):
		fmt.Fprintf(con.stderr, "%s %s: %v\n", programName, c.name, oneLine(err))
		return exitUsage
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(con.stderr, "%s %s: interrupted: %v\n", programName, c.name, oneLine(err))
		return exitFailed
	}
	fmt.Fprintf(con.stderr, "%s %s: %v\n", programName, c.name, oneLine(err))
	return exitFailed
}

// oneLine keeps an error to one line: the SDK's errors can hold newlines.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// newFlagSet makes the flag set of c with the flags every command takes.
func newFlagSet(c *command, con *console) (*flag.FlagSet, *globals) {
	fs := flag.NewFlagSet(programName+" "+c.name, flag.ContinueOnError)
	fs.SetOutput(con.stderr)
	g := &globals{con: con}
	g.register(fs)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s %s %s\n\n%s\n\n", programName, c.name, c.usage, strings.TrimSpace(c.help))
		fmt.Fprintln(w, "flags:")
		fs.PrintDefaults()
	}
	return fs, g
}

func printOverview(w io.Writer) {
	fmt.Fprintf(w, `%s encrypts S3 objects in this process: keys and plaintext never reach S3.

usage: %s <command> [flags] [arguments]

commands:
`, programName, programName)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, `
Run '%s help <command>' for its flags and examples.

Objects are s3://bucket/key. Master keys (--key): an AES or RSA key file,
env:NAME (the key in an environment variable) or kms:ID (a KMS key ID, ARN
or alias). AWS credentials, region and profile come from the AWS SDK's usual
chain; --profile, --region and --endpoint-url work as in the AWS CLI.

Exit status: 0 done, 1 an object failed (or the work was interrupted),
2 usage or setup error.
`, programName)
}
