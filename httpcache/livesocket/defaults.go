package livesocket

import "time"

// Defaults that zero fields of [Config] and [GuardConfig] take, exported
// so that front ends show the library's values instead of restating them.
const (
	// DefaultReadLimit is Config.ReadLimit's default.
	DefaultReadLimit = 1 << 20
	// DefaultIdleTimeout is Config.IdleTimeout's default.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultMaxSockets is Config.MaxSockets's default.
	DefaultMaxSockets = 10000
	// DefaultGuardThreshold is GuardConfig.Threshold's default.
	DefaultGuardThreshold = 2
)

// CheckOrigin reports whether s is a valid entry of OriginConfig.Allowed
// (Phoenix's check_origin forms: //host, https://host, //*.example.com,
// https://host:8443), with the error NewOriginPolicy would give. Front
// ends call it to refuse a bad entry early, naming their flag.
func CheckOrigin(s string) error {
	_, err := parseRule(s)
	return err
}
