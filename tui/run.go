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
		}
		opts.Renderer = r
	}
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
