package injector_test

import (
	"os"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/internal/hclogr"
	"github.com/faultline-dev/faultline/internal/testbin"
)

func TestMain(m *testing.M) {
	// klog's logger may be set only before client-go runs: set it here, before any test
	// starts a client, and let each injector's Run point it at that injector's logger.
	hclogr.Install(hclog.NewNullLogger())
	code := m.Run()
	testbin.RemoveTemp()
	os.Exit(code)
}
