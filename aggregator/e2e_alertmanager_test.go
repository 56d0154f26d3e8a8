package aggregator_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// A breaker that opens reaches a real Alertmanager through its v2 API, and leaves it
// when it closes again.
func TestEndToEndAlertmanagerDelivery(t *testing.T) {
	am := testbin.Tool(t, "alertmanager", "make tools installs it into bin/")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte("route:\n  receiver: none\nreceivers:\n  - name: none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	amAddr := testbin.FreeAddr(t, "127.0.0.1")
	testbin.Start(t, am, nil, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	testbin.WaitHTTP(t, "http://"+amAddr+"/-/ready", http.StatusOK, 30*time.Second)

	a := newSimAgent(t, "127.0.0.10", "cart-1")
	agg := startAggregator(t, "--agents="+a.URL(), "--alertmanager-url=http://"+amAddr)
	waitConnected(t, agg, 1)
	a.Flip("payments", wire.StateOpen)

	alerts := func() ([]map[string]any, error) {
		resp, err := http.Get("http://" + amAddr + "/api/v2/alerts")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out []map[string]any
		return out, json.NewDecoder(resp.Body).Decode(&out)
	}
	breakerAlert := func() (map[string]any, error) {
		list, err := alerts()
		if err != nil {
			return nil, err
		}
		for _, al := range list {
			if l, _ := al["labels"].(map[string]any); l["alertname"] == "breaker-open" && l["breaker"] == "payments" {
				return al, nil
			}
		}
		return nil, nil
	}
	testbin.Eventually(t, 15*time.Second, func() error {
		al, err := breakerAlert()
		if err != nil {
			return err
		}
		if al == nil {
			return fmt.Errorf("breaker-open alert not in Alertmanager yet")
		}
		if l := al["labels"].(map[string]any); l["severity"] != "critical" || l["namespace"] != "shop" || l["workload"] != "cart" {
			return fmt.Errorf("labels = %v; want severity critical (1 of 1 pods), namespace shop, workload cart", l)
		}
		return nil
	})
	a.Flip("payments", wire.StateClosed)
	testbin.Eventually(t, 15*time.Second, func() error {
		al, err := breakerAlert()
		if err != nil {
			return err
		}
		if al != nil {
			return fmt.Errorf("resolved alert still active in Alertmanager: %v", al["status"])
		}
		return nil
	})
}
