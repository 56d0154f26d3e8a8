// Package version is the build's version, set by the Makefile and Dockerfile with
// -ldflags "-X github.com/faultline-dev/faultline/internal/version.Version=...".
package version

// Version of this build; "dev" when built without the Makefile.
var Version = "dev"
