// Command etcd is a thin wrapper around the upstream etcd server entry point.
//
// It exists so that the etcd binary controller-runtime's envtest needs can be
// built from the Go module proxy (see hack/envtest-assets.sh) instead of being
// downloaded as a release tarball.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
