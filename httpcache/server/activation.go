package server

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The listener names SystemdListeners understands (FileDescriptorName= in
// a .socket unit).
const (
	ListenerPublic = "public"
	ListenerAdmin  = "admin"
)

// listenFDsStart is SD_LISTEN_FDS_START: the first passed descriptor.
const listenFDsStart = 3

// SystemdListeners returns the listening sockets a supervisor passed
// with the systemd socket activation protocol (sd_listen_fds(3)):
// LISTEN_PID names this process, LISTEN_FDS counts descriptors from 3
// on, and LISTEN_FDNAMES (colon-separated) names them. Names must be
// [ListenerPublic] or [ListenerAdmin]; without names the first descriptor
// is the public listener and the second the admin one. The map is nil
// (and the error nil) when no sockets were passed for this process, so a
// caller falls back to binding its addresses.
//
// getenv is os.LookupEnv in a main. The variables are not unset (the
// caller may, with os.Unsetenv), but every descriptor is marked
// close-on-exec, so no child inherits them. A descriptor that is not a
// listening stream socket is an error (the public one must be TCP; the
// admin one may be a unix socket). The caller owns the listeners.
func SystemdListeners(getenv func(string) (string, bool)) (map[string]net.Listener, error) {
	fdsVal, ok := getenv("LISTEN_FDS")
	if !ok {
		return nil, nil
	}
	if pid, ok := getenv("LISTEN_PID"); ok {
		// Passed to a parent that exec'd us without clearing them: not ours.
		if p, err := strconv.Atoi(strings.TrimSpace(pid)); err != nil || p != os.Getpid() {
			return nil, nil
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(fdsVal))
	if err != nil || n < 0 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a count of descriptors", fdsVal)
	}
	if n == 0 {
		return nil, nil
	}
	if n > 2 {
		return nil, fmt.Errorf("socket activation: %d sockets passed; firstrender takes at most two (%s and %s)", n, ListenerPublic, ListenerAdmin)
	}
	var names []string
	if v, ok := getenv("LISTEN_FDNAMES"); ok && v != "" {
		names = strings.Split(v, ":")
		if len(names) != n {
			return nil, fmt.Errorf("socket activation: LISTEN_FDNAMES names %d sockets, LISTEN_FDS says %d", len(names), n)
		}
	}
	out := map[string]net.Listener{}
	closeAll := func() {
		for _, ln := range out {
			ln.Close()
		}
	}
	for i := range n {
		fd := listenFDsStart + i
		name := []string{ListenerPublic, ListenerAdmin}[i]
		if names != nil && !(n == 1 && names[0] == "unknown") {
			// systemd names an unnamed socket after its unit ("x.socket")
			// or "unknown"; only one such socket is unambiguous.
			name = names[i]
		}
		if name != ListenerPublic && name != ListenerAdmin {
			closeAll()
			return nil, fmt.Errorf("socket activation: descriptor %d is named %q; name the sockets %q and %q (FileDescriptorName= in the .socket unit)", fd, name, ListenerPublic, ListenerAdmin)
		}
		if _, dup := out[name]; dup {
			closeAll()
			return nil, fmt.Errorf("socket activation: two sockets named %q", name)
		}
		syscall.CloseOnExec(fd)
		// Non-blocking before os.NewFile sees it, so the File never
		// switches the socket (shared with the supervisor and, during a
		// restart, the previous process) back to blocking mode.
		if err := syscall.SetNonblock(fd, true); err != nil {
			closeAll()
			return nil, fmt.Errorf("socket activation: descriptor %d (%s): %w", fd, name, err)
		}
		f := os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd)+":"+name)
		ln, err := net.FileListener(f)
		f.Close() // FileListener holds a duplicate
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("socket activation: descriptor %d (%s) is not a listening stream socket: %w", fd, name, err)
		}
		if _, ok := ln.Addr().(*net.TCPAddr); !ok && name == ListenerPublic {
			ln.Close()
			closeAll()
			return nil, fmt.Errorf("socket activation: descriptor %d (%s) is %s, the public listener must be TCP (ListenStream=host:port)", fd, name, ln.Addr().Network())
		}
		out[name] = ln
	}
	return out, nil
}
