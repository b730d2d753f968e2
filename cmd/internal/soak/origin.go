package soak

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

var terminate = syscall.SIGTERM

// origin is the soak's slow application: pages with a think time, and a
// WebSocket echo on /live/websocket.
type origin struct {
	Addr string
	srv  *http.Server
}

func (o *origin) Close() { o.srv.Close() }

func startOrigin(delay time.Duration) (*origin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	think := func() {
		time.Sleep(delay + time.Duration(rand.Int64N(int64(delay)/2+1))) // the origin's render time
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/live/websocket", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, b); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/page/", func(w http.ResponseWriter, r *http.Request) {
		think()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/page/"), "/")
		if len(parts) != 2 {
			http.NotFound(w, r)
			return
		}
		n, _ := strconv.Atoi(parts[1])
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		size := 4<<10 + (n*613)%(12<<10)
		switch parts[0] {
		case "hot":
			h.Set("Cache-Control", "public, max-age=3600")
		case "reval":
			etag := `"v1-` + parts[1] + `"`
			h.Set("Cache-Control", "public, max-age=2")
			h.Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		default:
			h.Set("Cache-Control", "public, max-age=600")
		}
		body := bytes.Repeat([]byte(r.URL.Path+"\n"), size/(len(r.URL.Path)+1)+1)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	o := &origin{Addr: ln.Addr().String(), srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go o.srv.Serve(ln)
	return o, nil
}
