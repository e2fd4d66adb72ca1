// Package buildinfo carries the version stamp that the build writes into the
// binary with -ldflags "-X <module>/internal/buildinfo.Version=...".
package buildinfo

import "runtime"

// Set at link time. They are variables, not constants, because -X can only
// overwrite package-level string variables.
var (
	Version = "dev"
	Commit  = "unknown"
	Date    = "unknown"
)

// Info is the build stamp as /version and the build_info metric report it.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	GoVersion string `json:"go_version"`
}

// Get returns the stamp of the running binary.
func Get() Info {
	return Info{
		Version:   Version,
		Commit:    Commit,
		BuildDate: Date,
		GoVersion: runtime.Version(),
	}
}
