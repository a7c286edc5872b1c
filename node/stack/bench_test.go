package stack

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// BenchmarkDemoLocate is one system caller's sequential POST /v1/locate on
// the real demo (four nodes on loopback, the three issuers of a 2-of-3 key
// answering over mutual-TLS peer calls, fsynced audit logs), at an issuer
// agency (which evaluates its own share and asks one other) and at the
// school (which asks two). It reports the latency percentiles a case
// system would see, and the CPU the whole demo spent a locate.
//
//	go test -run '^$' -bench DemoLocate -benchtime 2000x ./node/stack
func BenchmarkDemoLocate(b *testing.B) {
	p := auth.TestArgon2Params
	d, err := StartDemo(context.Background(), DemoConfig{Dir: b.TempDir(), Argon2: &p})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	for i, at := range []string{DemoAgencies[0].NodeID, DemoAgencies[1].NodeID} {
		url := "http://" + d.Stacks[i].Addr.String() + "/v1/locate"
		if d.Stacks[i].config.Node.NodeID != at {
			b.Fatalf("stack %d is %s, not %s", i, d.Stacks[i].config.Node.NodeID, at)
		}
		token := d.PractitionerTokens[at]
		b.Run("at="+at, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			cpu0 := testutil.CPUTime()
			for n := range b.N {
				body := `{"nhsNumber":"` + d.People[n%len(d.People)].NHSNumber + `","purpose":"safeguarding"}`
				t0 := time.Now()
				req, _ := http.NewRequest("POST", url, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				answer, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Fatalf("locate: %d %s", res.StatusCode, answer)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			b.ReportMetric(float64((testutil.CPUTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/locate")
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
