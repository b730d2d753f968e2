package tui

import (
	"errors"
	"testing"
)

var sizes = []struct {
	name string
	w, h int
}{{"80x24", 80, 24}, {"120x40", 120, 40}}

// TestView_Golden draws every screen at 80x24 and 120x40 with the ASCII
// colour profile, the fixed clock and the seeded data.
func TestView_Golden(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		src  func() *fakeSource
		wrap func(f *fakeSource) Source // a Source with more than fakeSource's methods
		do   func(h *harness, f *fakeSource)
	}{
		{name: "list_empty", src: func() *fakeSource { f := seeded(); f.entries = nil; return f }},
		{name: "list_loading", do: func(h *harness, f *fakeSource) {}},
		{name: "list", do: func(h *harness, f *fakeSource) { h.keys("j", "j") }},
		{name: "list_filtered", do: func(h *harness, f *fakeSource) {
			h.key("/")
			h.typ("tag:blog")
			h.key("enter")
		}},
		{name: "list_filter_prompt", do: func(h *harness, f *fakeSource) {
			h.key("/")
			h.typ("status:4xx fi")
		}},
		{name: "list_marked", do: func(h *harness, f *fakeSource) { h.keys(" ", "j", " ") }},
		{name: "list_disconnected", do: func(h *harness, f *fakeSource) {
			f.setStatsErr(errors.New("dial tcp 127.0.0.1:8081: connect: connection refused"))
			h.tick()
			h.tick()
		}},
		{name: "list_readonly", opts: Options{ReadOnly: true}},
		{name: "help", do: func(h *harness, f *fakeSource) { h.key("?") }},
		{name: "help_readonly", opts: Options{ReadOnly: true}, do: func(h *harness, f *fakeSource) { h.key("?") }},
		{name: "detail_overview", do: openBlog},
		{name: "detail_headers", do: func(h *harness, f *fakeSource) { openBlog(h, f); h.key("tab") }},
		{name: "detail_body", do: func(h *harness, f *fakeSource) {
			openBlog(h, f)
			h.keys("tab", "tab", "/")
			h.typ("first render")
			h.keys("enter", "n")
		}},
		{name: "detail_tokens", do: func(h *harness, f *fakeSource) { openBlog(h, f); h.keys("tab", "tab", "tab") }},
		{name: "detail_findings", do: func(h *harness, f *fakeSource) { openBlog(h, f); h.keys("shift+tab") }},
		{name: "detail_help", do: func(h *harness, f *fakeSource) { openBlog(h, f); h.key("?") }},
		{name: "decode", do: func(h *harness, f *fakeSource) {
			openBlog(h, f)
			h.keys("tab", "tab", "tab", "enter")
			h.tick() // the countdown moves with the clock
		}},
		{name: "decode_shallow", do: func(h *harness, f *fakeSource) {
			h.key(":")
			h.typ("decode SFMyNTY.g2gDaAJhBXQAAAADZAAC.aWQ")
			h.keys("enter", "-", "-", "-")
		}},
		{name: "decode_paste", do: func(h *harness, f *fakeSource) {
			h.key(":")
			h.typ("decode")
			h.key("enter")
			h.typ("SFMyNTY.g2gD")
		}},
		{name: "purge_dialog", do: func(h *harness, f *fakeSource) { h.keys("j", "j", "j", "d") }},
		{name: "purge_dialog_counting", do: func(h *harness, f *fakeSource) {
			h.hold = true
			h.keys("j", "d")
			h.fire(slowMsg{})
		}},
		{name: "purge_all", do: func(h *harness, f *fakeSource) {
			h.key(":")
			h.typ("purge all")
			h.key("enter")
			h.typ("al")
			h.key("tab")
		}},
		{name: "purge_done", do: func(h *harness, f *fakeSource) {
			h.keys("j", "j", "j", "d", "tab", "enter")
		}},
		{name: "cluster", wrap: func(f *fakeSource) Source { return newClusterFake(f) }, do: func(h *harness, f *fakeSource) {
			h.key(":")
			h.typ("cluster")
			h.key("enter")
		}},
		{name: "cluster_stale", wrap: func(f *fakeSource) Source { return newClusterFake(f) }, do: func(h *harness, f *fakeSource) {
			h.key(":")
			h.typ("cluster")
			h.key("enter")
			h.m.src.(*clusterFake).setErr(errors.New("connection refused"))
			h.tick()
			h.tick()
		}},
		{name: "stats", do: func(h *harness, f *fakeSource) {
			h.key(":")
			h.typ("stats")
			h.key("enter")
		}},
	}
	for _, c := range cases {
		for _, sz := range sizes {
			t.Run(c.name+"_"+sz.name, func(t *testing.T) {
				f := seeded()
				if c.src != nil {
					f = c.src()
				}
				var h *harness
				if c.name == "list_loading" {
					h = newHeld(t, f, c.opts, sz.w, sz.h)
				} else if c.wrap != nil {
					h = newHarness(t, c.wrap(f), c.opts, sz.w, sz.h)
					warm(h, f, 130)
				} else {
					h = newHarness(t, f, c.opts, sz.w, sz.h)
					warm(h, f, 130)
				}
				if c.do != nil {
					c.do(h, f)
				}
				golden(t, h.view())
			})
		}
	}
}

// newHeld starts a harness whose first replies never come, with the slow
// timers fired (the spinner shows).
func newHeld(t *testing.T, f *fakeSource, opts Options, w, h int) *harness {
	hs := &harness{t: t, clock: &clock{t: t0}, hold: true}
	opts.Now = hs.clock.now
	opts.Renderer = asciiRenderer()
	opts.Instance = "127.0.0.1:9090"
	hs.m = New(f, opts)
	hs.m.after = newHarness(t, &fakeSource{}, Options{}, 1, 1).m.after
	hs.hookStream()
	hs.send(sizeMsg(w, h))
	hs.run(hs.m.Init())
	hs.fire(slowMsg{})
	return hs
}

func openBlog(h *harness, f *fakeSource) {
	h.keys("j", "j", "enter")
	if h.m.det == nil || h.m.det.d == nil || h.m.det.key != "https://app.test/blog" {
		h.t.Fatalf("detail of https://app.test/blog did not open: %+v", h.m.det)
	}
}
