// Package httpcachetest is the test rig for code that puts a caching
// proxy in front of an origin: [New] starts an httptest origin (counting
// requests), opens a real store under t.TempDir() (store/storetest,
// integrity-checked at cleanup), builds the handler, usually an
// *httpcache.Proxy, with a fake clock and a quiet logger, and serves it
// on loopback. [ParseCacheStatus], [Find] and [Member.Match] compare
// Cache-Status members parameter by parameter, never by substring
// ("ttl=60" does not match ttl=600). [SyncBuffer] is a log sink that
// goroutines write to while the test reads it.
//
// It does not import httpcache, so httpcache's own in-package tests can
// use it (an import back would be a cycle); callers pass a build function:
//
//	r := httpcachetest.New(t, origin, func(env httpcachetest.Env) (*httpcache.Proxy, error) {
//		return httpcache.New(httpcache.Config{Upstream: env.Upstream, Store: env.Store, Now: env.Clock.Now, Logger: env.Logger})
//	})
//	res := r.Get("/")
//	if err := res.CacheStatus(t, httpcache.CacheName).Match("hit; ttl=60"); err != nil {
//		t.Error(err)
//	}
//
// It is imported by tests only.
package httpcachetest
