package phxtoken

import (
	"strings"

	"github.com/firstrender/firstrender/httpcache/liveview/erlterm"
)

// TokenVersion is the LiveView token version ({vsn, data}) that
// [SessionData] and [StaticData] emit: 5, as in the seed's recorded tokens
// (phoenix_live_view 0.18–0.20). LiveView refuses tokens of another version
// with {:error, :outdated}.
const TokenVersion = 5

// Session describes the data LiveView signs into a root data-phx-session
// attribute (Phoenix.LiveView.Static.sign_root_session).
type Session struct {
	ID             string      // DOM id, "phx-F5UgOQKJJCK_shjD"
	View           string      // LiveView module, "MyAppWeb.PageLive" ("Elixir." is added)
	Router         string      // router module, "MyAppWeb.Router"; "" means nil
	LiveSession    string      // live_session name; "" means "default"
	LiveSessionVsn int64       // live_session version (System.system_time(:nanosecond) at compile)
	Session        erlterm.Map // user session values; nil means %{} (nothing private)
}

// Module returns the atom for an Elixir module name, adding "Elixir.".
func Module(name string) erlterm.Atom {
	if strings.HasPrefix(name, "Elixir.") {
		return erlterm.Atom(name)
	}
	return erlterm.Atom("Elixir." + name)
}

// SessionData returns {5, %{id: ..., live_session: {name, vsn},
// parent_pid: nil, root_pid: nil, root_view: View, router: Router,
// session: %{...}, view: View}}, the data of a root data-phx-session token,
// keys in the order OTP encodes them. Sign it with [Signer.Sign].
func SessionData(s Session) erlterm.Term {
	router := erlterm.Term(erlterm.Atom("nil"))
	if s.Router != "" {
		router = Module(s.Router)
	}
	name := s.LiveSession
	if name == "" {
		name = "default"
	}
	sess := s.Session
	if sess == nil {
		sess = erlterm.Map{}
	}
	return erlterm.Tuple{erlterm.Int(TokenVersion), erlterm.Map{
		{Key: erlterm.Atom("id"), Value: erlterm.Binary(s.ID)},
		{Key: erlterm.Atom("live_session"), Value: erlterm.Tuple{erlterm.Atom(name), erlterm.Int(s.LiveSessionVsn)}},
		{Key: erlterm.Atom("parent_pid"), Value: erlterm.Atom("nil")},
		{Key: erlterm.Atom("root_pid"), Value: erlterm.Atom("nil")},
		{Key: erlterm.Atom("root_view"), Value: Module(s.View)},
		{Key: erlterm.Atom("router"), Value: router},
		{Key: erlterm.Atom("session"), Value: sess},
		{Key: erlterm.Atom("view"), Value: Module(s.View)},
	}}
}

// StaticData returns {5, %{assign_new: [], flash: %{}, id: id}}, the data of
// a data-phx-static token.
func StaticData(id string) erlterm.Term {
	return erlterm.Tuple{erlterm.Int(TokenVersion), erlterm.Map{
		{Key: erlterm.Atom("assign_new"), Value: erlterm.List(nil)},
		{Key: erlterm.Atom("flash"), Value: erlterm.Map{}},
		{Key: erlterm.Atom("id"), Value: erlterm.Binary(id)},
	}}
}

// UserSession returns the user session map carried by LiveView token data
// ({vsn, %{session: map}}) and whether the data has that shape. A non-empty
// map is per-user data baked into the page.
func UserSession(data erlterm.Term) (erlterm.Map, bool) {
	t, ok := data.(erlterm.Tuple)
	if !ok || len(t) != 2 {
		return nil, false
	}
	m, ok := t[1].(erlterm.Map)
	if !ok {
		return nil, false
	}
	v, ok := m.Get(erlterm.Atom("session"))
	if !ok {
		return nil, false
	}
	sm, ok := v.(erlterm.Map)
	return sm, ok
}
