package httpcachetest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Instruction headers understood by [Echo]. A request carrying them makes
// the echo origin answer the way a real origin answers some input the
// cache does not key on (an oversized header, an override header, a
// restart): the "A" request of a poisoning test sends them, the clean "B"
// request does not.
const (
	// EchoStatus sets the response status ("503").
	EchoStatus = "Echo-Status"
	// EchoHeader adds a response header; repeatable, "Name: value".
	// A Cache-Control given this way replaces the default one.
	EchoHeader = "Echo-Header"
	// EchoBody replaces the reflected body.
	EchoBody = "Echo-Body"
	// EchoFraming breaks the response framing on the wire: "both" sends
	// Content-Length and Transfer-Encoding: chunked, "short" announces
	// more bytes than it sends and closes, "coding" sends the body in a
	// transfer coding nobody implements (Transfer-Encoding: x-unknown)
	// and closes, "empty" sends no body at all (Content-Length: 0).
	EchoFraming = "Echo-Framing"
)

// EchoCacheControl is the Cache-Control of an echo response unless an
// EchoHeader instruction sets another: storable by a shared cache.
const EchoCacheControl = "public, max-age=600"

// DefaultReflect lists the request headers [Echo] reflects in its body:
// the ones a shared cache must key on, strip or refuse, so a stored
// response that depends on them shows it. Headers outside the list are
// not reflected (an origin that reflects every unkeyed header cannot be
// made safe by any cache).
var DefaultReflect = []string{
	"Accept-Encoding", "Authorization", "Cookie", "Range", "If-Range",
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
	"X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded",
}

// methodOverride lists the headers frameworks read as the request's real
// method (Rails, Laravel, Symfony, Express's method-override).
var methodOverride = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// Echo is an origin handler for poisoning tests. Its body reflects what it
// received: the effective method (a method-override header wins, as in
// frameworks that honour one), path, query and the [DefaultReflect]
// headers, one per line, sorted. It answers 200 with Content-Type
// text/plain and Cache-Control [EchoCacheControl], unless the request's
// instruction headers ([EchoStatus], [EchoHeader], [EchoBody],
// [EchoFraming]) say otherwise. An overriding method other than GET or
// HEAD is answered 405, as a route that only knows GET would. It is safe
// for concurrent use.
func Echo(w http.ResponseWriter, r *http.Request) {
	method := r.Method
	for _, k := range methodOverride {
		if v := r.Header.Get(k); v != "" {
			method = strings.ToUpper(v)
			break
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "method %s\npath %s\nquery %s\n", method, r.URL.EscapedPath(), r.URL.RawQuery)
	var lines []string
	for _, k := range DefaultReflect {
		for _, v := range r.Header.Values(k) {
			lines = append(lines, "header "+k+": "+v)
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	body := b.String()
	status := http.StatusOK
	if method != r.Method && method != http.MethodGet && method != http.MethodHead {
		status = http.StatusMethodNotAllowed
	}
	if s := r.Header.Get(EchoStatus); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 200 && n <= 999 {
			status = n
		}
	}
	if v, ok := r.Header[EchoBody]; ok {
		body = strings.Join(v, "")
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", EchoCacheControl)
	set := map[string]bool{}
	for _, v := range r.Header.Values(EchoHeader) {
		name, val, ok := strings.Cut(v, ":")
		if !ok {
			continue
		}
		name = http.CanonicalHeaderKey(strings.TrimSpace(name))
		if !set[name] {
			h.Del(name)
			set[name] = true
		}
		h.Add(name, strings.TrimSpace(val))
	}
	switch r.Header.Get(EchoFraming) {
	case "both", "short", "coding":
		rawResponse(w, status, h, body, r.Header.Get(EchoFraming))
		return
	case "empty":
		body = ""
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(body))
	}
}

// rawResponse writes a response with broken framing on the hijacked
// connection and closes it.
func rawResponse(w http.ResponseWriter, status int, h http.Header, body, framing string) {
	conn, bw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "echo: cannot hijack: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	h.Del("Content-Length")
	h.Write(bw)
	switch framing {
	case "both":
		fmt.Fprintf(bw, "Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(body))
		fmt.Fprintf(bw, "%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	case "short":
		fmt.Fprintf(bw, "Content-Length: %d\r\n\r\n%s", len(body)+100, body)
	case "coding":
		fmt.Fprintf(bw, "Transfer-Encoding: x-unknown\r\n\r\n%s", body)
	}
	bw.Flush()
}
