package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls the admin API. Build it with NewClient; it is safe for
// concurrent use. Every method takes a context and returns API errors as
// *Error (with Status and Code) and connection failures as *ConnError.
type Client struct {
	base    *url.URL // scheme://host, no path
	where   string   // what ConnError says was tried
	token   string
	hc      *http.Client
	timeout time.Duration
}

// ClientOption configures NewClient.
type ClientOption func(*Client)

// WithHTTPClient makes the client use hc (its Transport, its Timeout).
// For a unix socket base URL, NewClient replaces hc.Transport with one
// that dials the socket.
func WithHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.hc = hc } }

// WithTimeout bounds each call other than Events (zero: only the context).
func WithTimeout(d time.Duration) ClientOption { return func(c *Client) { c.timeout = d } }

// NewClient returns a client for the admin API at baseURL:
// "http://127.0.0.1:9090" (a path is not allowed: the API lives under
// /admin/v1/), or "unix:///path/to/admin.sock" for a unix socket. token
// is sent as "Authorization: Bearer <token>" and never appears in errors.
func NewClient(baseURL, token string, opts ...ClientOption) (*Client, error) {
	c := &Client{token: token}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("admin: client: base URL %q: %w", baseURL, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("admin: client: base URL %q has no host", baseURL)
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("admin: client: base URL %q: give only scheme://host:port", baseURL)
		}
		c.base = &url.URL{Scheme: u.Scheme, Host: u.Host}
		c.where = u.Scheme + "://" + u.Host
	case "unix":
		path := u.Path
		if u.Host != "" || path == "" {
			return nil, fmt.Errorf("admin: client: base URL %q: want unix:///absolute/path", baseURL)
		}
		c.base = &url.URL{Scheme: "http", Host: "unix"}
		c.where = "unix socket " + path
		hc := *c.hc
		var d net.Dialer
		hc.Transport = &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", path)
			},
			MaxIdleConns: 4,
		}
		c.hc = &hc
	default:
		return nil, fmt.Errorf("admin: client: base URL %q: scheme must be http, https or unix", baseURL)
	}
	return c, nil
}

// ConnError is a failure to reach the admin API: it names what was tried.
type ConnError struct {
	Method, URL string // the request
	Where       string // "http://127.0.0.1:9090" or "unix socket /run/fr.sock"
	Err         error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("admin: cannot reach the admin API at %s (%s %s): %v", e.Where, e.Method, e.URL, e.Err)
}

func (e *ConnError) Unwrap() error { return e.Err }

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = "/admin/" + Version + "/" + path
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends one request and decodes a 2xx JSON reply into out.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin: client: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return fmt.Errorf("admin: client: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

func (c *Client) send(req *http.Request, out any) error {
	resp, err := c.roundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("admin: client: %s %s: decode reply: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

func (c *Client) roundTrip(req *http.Request) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in ConnError already
		}
		if ctxErr := req.Context().Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return nil, ctxErr
		}
		return nil, &ConnError{Method: req.Method, URL: req.URL.String(), Where: c.where, Err: err}
	}
	return resp, nil
}

// readError turns a non-2xx reply into an *Error.
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(b, e) != nil || e.Code == "" {
		e.Code = "http_" + fmt.Sprint(resp.StatusCode)
		e.Message = strings.TrimSpace(string(b))
		if e.Message == "" {
			e.Message = resp.Status
		}
	}
	return e
}

// List returns one page of entries.
func (c *Client) List(ctx context.Context, q ListQuery) (Page, error) {
	var p Page
	err := c.do(ctx, http.MethodGet, "entries", q.Values(), nil, &p)
	return p, err
}

// Entries iterates over every entry q selects, from q's cursor forward
// (q.Before and q.Last are ignored), fetching pages as it goes. A page
// that returns no item but is not done (the scan budget ran out) is
// followed. Iteration stops at the first error, which is yielded once.
func (c *Client) Entries(ctx context.Context, q ListQuery) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		q.Before, q.Last = "", false
		for {
			p, err := c.List(ctx, q)
			if err != nil {
				yield(Entry{}, err)
				return
			}
			for _, e := range p.Items {
				if !yield(e, nil) {
					return
				}
			}
			if p.Done || p.Next == "" {
				return
			}
			q.After = p.Next
		}
	}
}

// Entry returns one variant with its headers, body (decoded from its
// Content-Encoding when decode is set) and tokens.
func (c *Client) Entry(ctx context.Context, key, variant string, decode bool) (EntryDetail, error) {
	q := url.Values{"key": {key}, "variant": {variant}}
	if decode {
		q.Set("decode", "1")
	}
	var d EntryDetail
	err := c.do(ctx, http.MethodGet, "entry", q, nil, &d)
	return d, err
}

// Decode decodes a Phoenix token on the server (which may verify it).
func (c *Client) Decode(ctx context.Context, token string) (Token, error) {
	var t Token
	err := c.do(ctx, http.MethodPost, "decode", nil, DecodeRequest{Token: token}, &t)
	return t, err
}

// Purge purges what req selects; it returns after the purge committed.
func (c *Client) Purge(ctx context.Context, req PurgeRequest) (PurgeResult, error) {
	var r PurgeResult
	err := c.do(ctx, http.MethodPost, "purge", nil, req, &r)
	return r, err
}

// PurgeURL sends the Varnish-style PURGE for an absolute page URL: the
// request goes to the admin address with the page's Host and path.
func (c *Client) PurgeURL(ctx context.Context, pageURL string, soft bool) (PurgeResult, error) {
	pu, err := url.Parse(pageURL)
	if err != nil || pu.Host == "" {
		return PurgeResult{}, fmt.Errorf("admin: client: PURGE %q: not an absolute URL", pageURL)
	}
	u := *c.base
	u.Path, u.RawPath, u.RawQuery = pu.Path, pu.RawPath, pu.RawQuery
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, "PURGE", u.String(), nil)
	if err != nil {
		return PurgeResult{}, fmt.Errorf("admin: client: %w", err)
	}
	req.Host = pu.Host
	if pu.Scheme == "https" {
		req.Header.Set("X-Forwarded-Proto", "https")
	}
	if soft {
		req.Header.Set("X-Purge-Soft", "1")
	}
	var r PurgeResult
	return r, c.send(req, &r)
}

// Purges returns the audit log of recent purges, newest first.
func (c *Client) Purges(ctx context.Context) ([]PurgeRecord, error) {
	var out struct {
		Purges []PurgeRecord `json:"purges"`
	}
	err := c.do(ctx, http.MethodGet, "purges", nil, nil, &out)
	return out.Purges, err
}

// Stats returns the server's figures.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := c.do(ctx, http.MethodGet, "stats", nil, nil, &s)
	return s, err
}

// Enable undoes a join-guard or manual disable of one variant.
func (c *Client) Enable(ctx context.Context, key, variant string) error {
	return c.do(ctx, http.MethodPost, "enable", nil, EnableRequest{Key: key, Variant: variant}, nil)
}

// Check runs the store's integrity check (seconds on a large store).
func (c *Client) Check(ctx context.Context) (CheckResult, error) {
	var r CheckResult
	err := c.do(ctx, http.MethodPost, "check", nil, struct{}{}, &r)
	return r, err
}

// Compact asks the server to compact its store.
func (c *Client) Compact(ctx context.Context) (CompactResult, error) {
	var r CompactResult
	err := c.do(ctx, http.MethodPost, "compact", nil, struct{}{}, &r)
	return r, err
}

// EventStream reads GET events. Next blocks for the next event; Close
// ends the stream. Not safe for concurrent use.
type EventStream struct {
	resp *http.Response
	sc   *bufio.Scanner
}

// Events opens the event stream; it ends when ctx ends, Close is called,
// or the server drops the reader (after a "dropped" event).
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("events", nil), nil)
	if err != nil {
		return nil, fmt.Errorf("admin: client: %w", err)
	}
	resp, err := c.roundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	return &EventStream{resp: resp, sc: sc}, nil
}

// Next returns the next event, or io.EOF when the stream ended.
func (s *EventStream) Next() (Event, error) {
	var data []byte
	for s.sc.Scan() {
		line := s.sc.Bytes()
		switch {
		case len(line) == 0:
			if data == nil {
				continue
			}
			var ev Event
			if err := json.Unmarshal(data, &ev); err != nil {
				return Event{}, fmt.Errorf("admin: events: bad event data: %w", err)
			}
			return ev, nil
		case bytes.HasPrefix(line, []byte("data:")):
			d := bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, d...)
		}
		// "event:", "id:", "retry:" and ":comment" lines: the type is in the data.
	}
	if err := s.sc.Err(); err != nil {
		return Event{}, err
	}
	return Event{}, io.EOF
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.resp.Body.Close() }
