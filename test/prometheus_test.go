package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-stream/chronik/test/harness"
)

// requiredRaftSeries are the roadmap's raft metrics (histograms by their
// _bucket series, which histogram_quantile reads).
var requiredRaftSeries = []string{
	"chronik_raft_leader_count",
	"chronik_raft_follower_count",
	"chronik_raft_isr_size",
	"chronik_raft_follower_lag_entries",
	"chronik_raft_follower_lag_ms",
	"chronik_raft_election_count",
	"chronik_raft_election_latency_ms_bucket",
	"chronik_raft_commit_latency_ms_bucket",
	"chronik_raft_snapshot_count",
	"chronik_raft_snapshot_size_bytes",
}

// prometheus is a real Prometheus server scraping a cluster.
type prometheus struct {
	addr string
	log  *strings.Builder
}

// startPrometheus runs Debian's prometheus (make deps installs it) with a
// config scraping targets every 500 ms.
func startPrometheus(t *testing.T, targets []string) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed; `make deps` installs Debian's prometheus package")
	}
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 500ms
  scrape_timeout: 400ms
  evaluation_interval: 500ms
scrape_configs:
  - job_name: chronik
    static_configs:
      - targets: [%s]
`, strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &prometheus{addr: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), log: &strings.Builder{}}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+p.addr, "--log.level=warn")
	out := &lockedWriter{b: p.log}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	harness.WaitFor(t, "prometheus to be ready", 30*time.Second, func() error {
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", out.String())
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	return p
}

// api GETs a Prometheus HTTP API path and decodes its data field.
func (p *prometheus) api(path string, params url.Values, data any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: %v: %s", path, err, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

// promSample is one instant-vector sample.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float() float64 {
	str, _ := s.Value[1].(string)
	f, _ := strconv.ParseFloat(str, 64)
	return f
}

// query runs an instant query.
func (p *prometheus) query(q string) ([]promSample, error) {
	var data struct {
		ResultType string       `json:"resultType"`
		Result     []promSample `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	return data.Result, nil
}

// scalar runs a query that must return exactly one sample.
func (p *prometheus) scalar(q string) (float64, error) {
	res, err := p.query(q)
	if err != nil {
		return 0, err
	}
	if len(res) != 1 {
		return 0, fmt.Errorf("%s: %d samples: %+v", q, len(res), res)
	}
	return res[0].float(), nil
}

// TestPrometheusScrapesCluster has a real Prometheus scrape a three-node
// cluster: every target is up, every chronik_raft_* series of the roadmap
// is there, commit latency quantiles come out of histogram_quantile, and
// a leadership change increments the election count.
func TestPrometheusScrapesCluster(t *testing.T) {
	if _, err := exec.LookPath("prometheus"); err != nil {
		t.Skip("prometheus is not installed; `make deps` installs Debian's prometheus package")
	}
	c := harness.NewCluster(t, harness.ClusterOptions{Nodes: 3, ExtraConfig: noPreferredLeaders})
	c.Start()
	var targets []string
	for _, n := range c.Nodes {
		targets = append(targets, n.HTTPAddr())
	}
	prom := startPrometheus(t, targets)

	cl := clusterClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	createTopic(t, cl, "prom", 2, 3)
	for p := range int32(2) {
		waitLeader(t, c, "prom", p, -1)
	}
	produceN(t, cl, "prom", 0, "m", 200)
	lead := waitAdminFullISR(t, c, "prom", 0)

	harness.WaitFor(t, "every target up in prometheus", 60*time.Second, func() error {
		var data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := prom.api("/api/v1/targets", url.Values{"state": {"active"}}, &data); err != nil {
			return err
		}
		if len(data.ActiveTargets) != len(targets) {
			return fmt.Errorf("%d active targets, want %d", len(data.ActiveTargets), len(targets))
		}
		for _, tg := range data.ActiveTargets {
			if tg.Health != "up" {
				return fmt.Errorf("target %s: %s %s", tg.ScrapeURL, tg.Health, tg.LastError)
			}
		}
		return nil
	})

	harness.WaitFor(t, "every roadmap chronik_raft_* series from every node", 60*time.Second, func() error {
		res, err := prom.query(`count by (__name__, instance) ({__name__=~"chronik_raft_.*"})`)
		if err != nil {
			return err
		}
		have := map[string][]string{}
		for _, s := range res {
			have[s.Metric["__name__"]] = append(have[s.Metric["__name__"]], s.Metric["instance"])
		}
		for _, name := range requiredRaftSeries {
			// Leader-side series appear on the nodes that lead something:
			// at least one; the rest on all three.
			want := 3
			if slices.Contains([]string{"chronik_raft_isr_size", "chronik_raft_follower_lag_entries", "chronik_raft_follower_lag_ms"}, name) {
				want = 1
			}
			if len(have[name]) < want {
				return fmt.Errorf("%s from %v, want %d instances", name, have[name], want)
			}
		}
		return nil
	})

	// Live values: the sum of leaderships is the partitions (two, plus the
	// __consumer_offsets ones if any), ISR sizes are 3, commit latency has
	// samples and a p99 quantile.
	harness.WaitFor(t, "prometheus to see prom/0 with an ISR of 3 and commit latency quantiles", 30*time.Second, func() error {
		isr, err := prom.scalar(`max(chronik_raft_isr_size{topic="prom",partition="0"})`)
		if err != nil {
			return err
		}
		if isr != 3 {
			return fmt.Errorf("ISR size %v", isr)
		}
		leaders, err := prom.scalar(`sum(chronik_raft_leader_count)`)
		if err != nil {
			return err
		}
		if leaders < 2 {
			return fmt.Errorf("%v leaderships over the cluster, want at least 2", leaders)
		}
		commits, err := prom.scalar(`sum(chronik_raft_commit_latency_ms_count)`)
		if err != nil {
			return err
		}
		// One sample per produced batch: franz-go batches the 200 records.
		if commits < 1 {
			return fmt.Errorf("%v commits observed", commits)
		}
		p99, err := prom.scalar(`histogram_quantile(0.99, sum by (le) (chronik_raft_commit_latency_ms_bucket))`)
		if err != nil {
			return err
		}
		if !(p99 > 0) {
			return fmt.Errorf("commit latency p99 %v", p99)
		}
		return nil
	})

	checkDashboardQueries(t, prom)

	// An election (a leadership transfer) increments the count Prometheus
	// sees for prom/0.
	electionsQuery := `max(chronik_raft_election_count{topic="prom",partition="0"})`
	before, err := prom.scalar(electionsQuery)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := partitionOn(c.Node(int(lead)), "prom", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := harness.Context(t, time.Minute)
	if _, err := adminClient(c.Node(int(lead))).TransferLeader(ctx, "prom", 0, ps.Followers[0].ID); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "the election count of prom/0 to go up in prometheus", 30*time.Second, func() error {
		after, err := prom.scalar(electionsQuery)
		if err != nil {
			return err
		}
		if after <= before {
			return fmt.Errorf("still %v", after)
		}
		return nil
	})
}

// checkDashboardQueries runs every query of the Grafana dashboard through
// Prometheus, so a syntax error or a misspelt function fails here.
func checkDashboardQueries(t *testing.T, prom *prometheus) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "docs", "grafana", "chronik-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	vars := strings.NewReplacer("$job", "chronik", "$__rate_interval", "5s")
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if _, err := prom.query(vars.Replace(tg.Expr)); err != nil {
				t.Errorf("dashboard panel %q: %v", p.Title, err)
			}
		}
	}
}

// lockedWriter serialises a process's stdout and stderr into a builder.
type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
