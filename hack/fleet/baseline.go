package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// baseline reads every agent's stream with a plain net/http client and discards it: the
// cost of just receiving what the aggregator receives.
func baseline(o options) error {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
	client := &http.Client{Transport: tr}
	var connected, bytesRead atomic.Int64
	for i := 0; i < o.agents; i++ {
		url := "http://" + agentAddr(i, o.port) + "/v1/stream"
		go func() {
			for {
				resp, err := client.Get(url)
				if err != nil {
					time.Sleep(time.Second)
					continue
				}
				connected.Add(1)
				n, _ := io.Copy(io.Discard, resp.Body)
				bytesRead.Add(n)
				resp.Body.Close()
				connected.Add(-1)
			}
		}()
	}
	for connected.Load() < int64(o.agents) {
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("connected")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return nil
}
