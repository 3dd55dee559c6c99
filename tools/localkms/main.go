// Command localkms serves local-kms (github.com/nsmithuk/local-kms), a
// KMS-compatible test server, on a loopback address only.
//
// local-kms's own binary listens on every interface; this wrapper serves the
// same request handler on the one loopback address it is given, and keeps its
// keys in the directory it is given:
//
//	localkms -addr 127.0.0.1:PORT -data DIR [-region us-east-1] [-account 111122223333]
//
// It prints "localkms: listening on ADDR" once it accepts connections, and
// stops cleanly (closing the key database) on SIGINT or SIGTERM. local-kms
// checks no signatures: any static credentials work. It is a test tool: its
// keys are stored unprotected in -data.
//
// This is a nested module (not in go.work), so that local-kms's dependencies
// never reach the library's go.mod; build it with GOWORK=off.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	localkms "github.com/nsmithuk/local-kms/src"
	"github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
)

// sourceDigest is a digest of the tools module's sources, set at build time by
// scripts/test (-ldflags "-X main.sourceDigest=..."), which reads it back with
// go version -m to tell a stale binary.
var sourceDigest = "unset"

func main() {
	addr := flag.String("addr", "", "loopback `host:port` to listen on, e.g. 127.0.0.1:4599 (port 0 picks a free one)")
	dir := flag.String("data", "", "`directory` for the key database (created if missing)")
	region := flag.String("region", "us-east-1", "AWS `region` named in key ARNs")
	account := flag.String("account", "111122223333", "AWS account `ID` named in key ARNs")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: localkms -addr 127.0.0.1:PORT -data DIR\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*addr, *dir, *region, *account); err != nil {
		fmt.Fprintf(os.Stderr, "localkms: %v\n", err)
		os.Exit(1)
	}
}

// checkLoopback accepts only host:port with a literal loopback IP as host:
// no host names (which may resolve anywhere), no wildcard.
func checkLoopback(addr string) error {
	if addr == "" {
		return errors.New("-addr is required (a loopback address such as 127.0.0.1:PORT)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %v", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() || ip.Zone() != "" {
		return fmt.Errorf("-addr %q: the host must be a loopback IP address (127.0.0.1 or ::1), not %q", addr, host)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("-addr %q: the port must be a number from 0 to 65535", addr)
	}
	return nil
}

func run(addr, dir, region, account string) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	if dir == "" {
		return errors.New("-data is required (a directory for the key database)")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}

	// local-kms keeps its settings in package variables; its handlers build
	// key ARNs from them.
	config.AWSRegion = region
	config.AWSAccountId = account
	config.DatabasePath = abs

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// data.NewDatabase panics when the database cannot be opened (for
	// example, another process holds its lock).
	db, err := openDatabase(abs)
	if err != nil {
		ln.Close()
		return err
	}
	defer db.Close()

	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			localkms.HandleRequest(w, r, db)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// scripts/test reads the port from this line: keep it first and as is.
	fmt.Printf("localkms: listening on %s, data in %s (build %s)\n", ln.Addr(), abs, sourceDigest)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func openDatabase(path string) (db *data.Database, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("opening the key database in %s: %v", path, r)
		}
	}()
	return data.NewDatabase(path), nil
}
