package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair with the kernel's interface (no
// third-party package): the controller, where the test reads what the
// command draws, and the terminal, which the command gets as its stderr.
func openPTY(t *testing.T) (controller, terminal *os.File) {
	t.Helper()
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, controller.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatalf("unlocking the pseudo-terminal: %v", errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, controller.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("naming the pseudo-terminal: %v", errno)
	}
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the terminal side: %v", err)
	}
	t.Cleanup(func() { controller.Close(); terminal.Close() })
	return controller, terminal
}

// runOnTerminal runs the binary like run, but with its stderr on a
// pseudo-terminal (TERM=xterm), and returns what it drew there.
func (c *cli) runOnTerminal(stdin []byte, args ...string) result {
	c.t.Helper()
	controller, terminal := openPTY(c.t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := c.command(ctx, args, "TERM=xterm")
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, terminal
	drawn := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(controller) // ends with EIO once the terminal side is closed
		drawn <- b
	}()
	err := cmd.Run()
	terminal.Close()
	tty := <-drawn
	r := result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: string(tty)}
	if err != nil && r.code < 0 {
		c.t.Fatalf("running %v: %v", args, err)
	}
	c.t.Logf("$ s3envelope %s (stderr on a terminal)\n-> exit %d\nterminal:\n%q", args, r.code, clip(r.stderr))
	return r
}
