package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/firstrender/firstrender/cmd/internal/cli"
	"github.com/firstrender/firstrender/httpcache/admin"
	"github.com/firstrender/firstrender/httpcache/server"
	"github.com/firstrender/firstrender/store"
)

// The server's own variables for its token, read when --token is not
// given: one exported variable serves both binaries.
var (
	envServerToken     = cli.EnvName("admin-token")
	envServerTokenFile = cli.EnvName("admin-token-file")
)

// defaultLockWait is how long an offline command waits for the database's
// file lock before saying a server holds it: short, so it never hangs.
const defaultLockWait = 250 * time.Millisecond

// callTimeout bounds one quick API call (list, entry, stats, decode); a
// purge, check or compact is bounded only by the signal context.
const callTimeout = 30 * time.Second

// dialTimeout bounds connecting to a TCP admin address.
const dialTimeout = 3 * time.Second

// connFlags are the flags every command that talks to the server takes:
// where the server is, its token, the database to read when none runs.
type connFlags struct {
	admin    string
	token    string
	db       string
	offline  bool
	lockWait time.Duration
	fs       *cli.FlagSet
}

// defaultAdmin is the admin address tried when --admin is not given: the
// server's default admin listener. Tests point it at a closed port.
var defaultAdmin = "http://" + server.DefaultAdminListen

func defaultConn() connFlags {
	return connFlags{admin: defaultAdmin, db: server.DefaultDB, lockWait: defaultLockWait}
}

// add declares the connection flags on fs.
func (c *connFlags) add(fs *cli.FlagSet) {
	c.fs = fs
	fs.Var(cli.NonEmpty(&c.admin), "admin", "the server's admin `address`: http://HOST:PORT, HOST:PORT or unix:///PATH (the server's --admin-listen / --admin-socket)")
	fs.Secret(&c.token, "token", "the admin `token` (default: "+envServerToken+", "+envServerTokenFile+", then the file <db>"+admin.TokenFileSuffix+" the server generates)")
	fs.Var(cli.NonEmpty(&c.db), "db", "the server's database `file`: locates <db>"+admin.TokenFileSuffix+", and is read directly when no server answers")
	fs.Var(cli.Bool(&c.offline), "offline", "do not contact a server: read the database file (it must not be held by a running server)")
	fs.Var(cli.Duration(&c.lockWait, false), "lock-wait", "how long to wait for the database's file lock before saying a server holds it")
}

// source is where a flag's value came from ("default", "flag", "env X").
func (c *connFlags) source(name string) string {
	for _, f := range c.fs.Flags() {
		if f.Name == name {
			return f.Source
		}
	}
	return "default"
}

// baseURL turns --admin into the client's base URL: a bare HOST:PORT
// means http.
func (c *connFlags) baseURL() string {
	a := strings.TrimSpace(c.admin)
	if strings.Contains(a, "://") {
		return strings.TrimRight(a, "/")
	}
	return "http://" + a
}

// tokenSource says where the token was found, or where it was looked for.
type tokenSource struct {
	token string
	from  string // "--token-file /x", "FIRSTRENDER_ADMIN_TOKEN", "file /x/firstrender.db.admin-token"
	err   error  // why no token was found (the default file is missing, ...)
}

// resolveToken finds the token: --token / --token-file (or their
// variables), then the server's variables, then <db>.admin-token.
func (c *connFlags) resolveToken(lookupEnv func(string) (string, bool)) tokenSource {
	if c.token != "" {
		src := c.source("token")
		if src == "default" {
			src = c.source("token-file")
		}
		if src == "flag" {
			src = "--token"
		}
		return tokenSource{token: c.token, from: src}
	}
	if v, ok := lookupEnv(envServerToken); ok && strings.TrimSpace(v) != "" {
		return tokenSource{token: strings.TrimSpace(v), from: envServerToken}
	}
	if p, ok := lookupEnv(envServerTokenFile); ok && strings.TrimSpace(p) != "" {
		t, err := readTokenFile(p)
		return tokenSource{token: t, from: envServerTokenFile + " " + p, err: err}
	}
	p := admin.TokenFile(c.db)
	t, err := readTokenFile(p)
	return tokenSource{token: t, from: "file " + p, err: err}
}

// maxTokenFile bounds a token file read: a token is a line.
const maxTokenFile = 4 << 10

func readTokenFile(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxTokenFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("%s is larger than %d bytes: not a token file", path, maxTokenFile)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return t, nil
}

// access is what a command needs of the database when no server answers.
type access int

const (
	onlineOnly access = iota // the command needs a running server (events)
	readFile                 // the file may be read, read-only (ls, get, stats, check, TUI)
	writeFile                // the file may be changed when it is unlocked (purge, enable)
)

// session is a connected client: to a server, or to the database file
// through the same API handler in process.
type session struct {
	client  *admin.Client
	where   string // "http://127.0.0.1:9090", "file firstrender.db (offline, read-only)"
	offline bool
	close   func() error
}

func (s *session) Close() error {
	if s.close != nil {
		return s.close()
	}
	return nil
}

// connect reaches the server, or falls back to the database file as acc
// allows: only when --admin was not given (a server named explicitly must
// answer), or with --offline. Errors say what was tried.
func (c *connFlags) connect(ctx context.Context, e env, acc access) (*session, error) {
	if c.offline {
		if acc == onlineOnly {
			return nil, usagef("--offline: this command needs a running server")
		}
		return c.openFile(e, acc, nil)
	}
	s, ce, tok, err := c.dial(ctx, e)
	if ce == nil {
		return s, err
	}
	if acc == onlineOnly || c.explicitAdmin() {
		return nil, &exitError{code: exitConn, err: c.connFailure(ce, tok)}
	}
	return c.openFile(e, acc, ce)
}

// explicitAdmin reports whether --admin (or its variable) named the
// server: then it must answer, and no file is read instead.
func (c *connFlags) explicitAdmin() bool { return c.source("admin") != "default" }

// dial connects to the admin API and checks the token with one stats
// call. A failure to reach it is returned as ce (err nil), for the caller
// to fall back on the file; every other failure is err.
func (c *connFlags) dial(ctx context.Context, e env) (s *session, ce *admin.ConnError, tok tokenSource, err error) {
	tok = c.resolveToken(e.lookupEnv)
	base := c.baseURL()
	hc := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: dialTimeout}).DialContext,
		TLSHandshakeTimeout: dialTimeout,
		MaxIdleConns:        4,
	}}
	cl, err := admin.NewClient(base, tok.token, admin.WithHTTPClient(hc))
	if err != nil {
		return nil, nil, tok, usagef("--admin %q: %v", c.admin, strings.TrimPrefix(err.Error(), "admin: client: "))
	}
	pctx, cancel := context.WithTimeout(ctx, callTimeout)
	_, err = cl.Stats(pctx)
	cancel()
	if err == nil {
		return &session{client: cl, where: base}, nil, tok, nil
	}
	var ae *admin.Error
	switch {
	case errors.As(err, &ce):
		return nil, ce, tok, nil
	case errors.As(err, &ae) && (ae.Code == "unauthorized" || ae.Code == "rate_limited"):
		msg := fmt.Sprintf("the admin API at %s refused the token (%s: %s); token from %s (%s)", base, ae.Code, ae.Message, tok.from, admin.Redact(tok.token))
		if tok.token == "" {
			msg = fmt.Sprintf("the admin API at %s wants a token and none was found: %s: %s; give --token-file (the server logs its token file at start) or set %s", base, tok.from, short(tok.err), envServerToken)
		}
		return nil, nil, tok, &exitError{code: exitConn, err: errors.New(msg)}
	}
	return nil, nil, tok, &exitError{code: exitConn, err: fmt.Errorf("the admin API at %s answered stats with an error: %w", base, err)}
}

// connFailure is the one-paragraph "cannot connect" message: the address
// (and where it came from), the token file, the error.
func (c *connFlags) connFailure(ce *admin.ConnError, tok tokenSource) error {
	from := "the default; --admin or " + cli.EnvName("admin") + " to change"
	if c.explicitAdmin() {
		from = c.source("admin")
	}
	t := "token from " + tok.from
	if tok.err != nil {
		t = "no token (" + tok.from + ": " + short(tok.err) + ")"
	}
	return fmt.Errorf("cannot connect to the admin API at %s (%s): %v; %s", ce.Where, from, ce.Err, t)
}

// short is an error's message without the os package's "open PATH:"
// repetition.
func short(err error) string {
	var pe *iofs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// openFile opens the database for a command without a server: read-only
// for reads, read-write (only when no process holds it) for purge and
// enable. ce is the failed connection that led here (nil with --offline);
// the messages name it.
func (c *connFlags) openFile(e env, acc access, ce *admin.ConnError) (*session, error) {
	tried := ""
	if ce != nil {
		tried = fmt.Sprintf("no admin API answered at %s (%v), and ", ce.Where, ce.Err)
	}
	fi, err := os.Stat(c.db)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return nil, &exitError{code: exitConn, err: fmt.Errorf("%sthere is no database at %s (--db, %s): is the server running elsewhere? give --admin and --token-file, or --db", tried, c.db, c.source("db"))}
	case err != nil:
		return nil, &exitError{code: exitConn, err: fmt.Errorf("%sthe database %s cannot be read: %v", tried, c.db, short(err))}
	case fi.IsDir():
		return nil, usagef("--db %s is a directory: give the database file", c.db)
	}
	opts := store.Options{ReadOnly: acc != writeFile, Timeout: c.lockWait}
	st, err := store.Open(c.db, opts)
	if errors.Is(err, store.ErrLocked) {
		how := "connect to it with --admin ADDRESS (its --admin-listen, or unix:///PATH for --admin-socket) and --token-file"
		if ce == nil {
			how = "drop --offline to use its admin API (--admin, --token-file)"
		}
		if acc == writeFile {
			return nil, &exitError{code: exitConn, err: fmt.Errorf("%s%s is locked by a running server (waited %v), so it cannot be changed offline: %s", tried, c.db, c.lockWait, how)}
		}
		return nil, &exitError{code: exitConn, err: fmt.Errorf("%s%s is locked by a running server (waited %v): %s", tried, c.db, c.lockWait, how)}
	}
	if err != nil {
		return nil, &exitError{code: exitConn, err: fmt.Errorf("%sopening %s: %w", tried, c.db, err)}
	}
	tok, err := admin.GenerateToken()
	if err != nil {
		st.Close()
		return nil, err
	}
	cfg := admin.HandlerConfig{Token: tok, Store: st, Logger: slog.New(slog.DiscardHandler), Version: cli.Version("firstrender-admin")}
	mode := "offline, read-only"
	if acc == writeFile {
		cfg.Purger = &admin.StorePurger{Store: st}
		mode = "offline, read-write: no server holds it"
	}
	h, err := admin.NewHandler(cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	cl, err := admin.NewClient("http://offline", tok, admin.WithHTTPClient(&http.Client{Transport: handlerTransport{h}}))
	if err != nil {
		st.Close()
		return nil, err
	}
	where := fmt.Sprintf("file %s (%s)", c.db, mode)
	if ce != nil {
		fmt.Fprintf(e.stderr, "admin: no server at %s (%v); reading %s\n", ce.Where, short(ce.Err), where)
	}
	return &session{client: cl, where: where, offline: true, close: st.Close}, nil
}

// handlerTransport serves the admin client's requests with the API
// handler in process, so offline commands run the very code a server
// runs. Streams are not offered: there are no events without a server.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	if strings.HasSuffix(r.URL.Path, "/events") {
		return nil, errors.New("the event stream needs a running server")
	}
	in := r.Clone(r.Context())
	in.RemoteAddr = "127.0.0.1:0"
	in.RequestURI = r.URL.RequestURI()
	if in.Body == nil {
		in.Body = http.NoBody
	}
	w := &bufferedResponse{header: http.Header{}}
	t.h.ServeHTTP(w, in)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()),
		Request:       r,
	}, nil
}

// bufferedResponse is the http.ResponseWriter of handlerTransport.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }
func (w *bufferedResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *bufferedResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}
