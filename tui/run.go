package tui

import (
	"context"
	"errors"
	"fmt"
	"os"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Run shows the TUI on the terminal until the user quits (q at the list,
// :quit or ctrl-c) or ctx is done; both end with a nil error. It fails
// when src is nil or the terminal cannot be set up.
//
// Colours follow the terminal (adaptive to light and dark backgrounds)
// unless opts.Renderer says otherwise; NO_COLOR in the environment turns
// them off, and every state still reads through its glyph. Mouse
// reporting is on only with opts.Mouse.
//
// The terminal's background is asked once, before the program starts
// reading input (never with NO_COLOR), and the answer is also given to
// lipgloss's default renderer, which the bubbles components draw with;
// so no frame ever waits on a terminal reply.
func Run(ctx context.Context, src Source, opts Options) error {
	if src == nil {
		return errors.New("tui: nil Source")
	}
	out := opts.Output
	if out == nil {
		out = os.Stdout
	}
	if opts.Renderer == nil {
		r := lipgloss.NewRenderer(out)
		if os.Getenv("NO_COLOR") != "" {
			r.SetColorProfile(termenv.Ascii)
			// No colour is drawn, so the background cannot matter: say
			// so rather than ask the terminal.
			r.SetHasDarkBackground(true)
		}
		opts.Renderer = r
	}
	settleBackground(opts.Renderer)
	// The event stream and calls in flight end with Run.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := New(src, opts)
	m.ctx = ctx
	popts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithAltScreen(), tea.WithOutput(out)}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	if opts.Mouse {
		popts = append(popts, tea.WithMouseCellMotion())
	}
	_, err := tea.NewProgram(m, popts...).Run()
	if err != nil && ctx.Err() != nil && errors.Is(err, tea.ErrProgramKilled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tui: %w", err)
	}
	return nil
}

// settleBackground decides r's light or dark background before the
// program starts, and gives the answer to lipgloss's default renderer.
//
// Left to itself, lipgloss asks the terminal on the first render of an
// adaptive colour (termenv writes OSC 11 and a cursor position request and
// reads the replies from the terminal): inside the program that render is
// View, while bubbletea's input reader reads the same terminal, so either
// may take the replies. termenv waits for input with select and then does
// a blocking read; when the input reader took the bytes, the read blocks
// until the next keystroke and the first frame is never drawn (the tmux
// smoke test caught a blank pane this way), or the keys typed next are
// swallowed as a reply. Asked here, before tea.NewProgram starts reading,
// termenv is the only reader and its own timeout bounds the wait.
func settleBackground(r *lipgloss.Renderer) {
	lipgloss.SetHasDarkBackground(r.HasDarkBackground())
}
