// Package admin is firstrender's operator surface: the admin HTTP API served
// on the admin listener (never the public one), and its Go client, used by
// cmd/admin, the terminal UI and the cluster mode.
//
// The wire types in this package (Entry, Page, PurgeRequest, Stats, Event,
// ...) are the API's own and documented in docs/admin-api.md.
package admin
