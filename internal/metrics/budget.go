package metrics

import "github.com/prometheus/client_golang/prometheus"

// BudgetSource is a node-wide memory budget (internal/membudget).
type BudgetSource interface {
	Reserved() int64
	Limit() int64
	Waits() uint64
}

var (
	descBudgetReserved = prometheus.NewDesc("chronik_kafka_memory_reserved_bytes",
		"Bytes held now in a node-wide memory budget: requests read and not yet answered, Fetch responses read and not yet written, or batches decompressed.", []string{"budget"}, nil)
	descBudgetLimit = prometheus.NewDesc("chronik_kafka_memory_limit_bytes",
		"Configured size of a node-wide memory budget (kafka.queued_max_request_bytes, kafka.queued_max_fetch_bytes, 128 MiB for decompression).", []string{"budget"}, nil)
	descBudgetWaits = prometheus.NewDesc("chronik_kafka_memory_waits_total",
		"Requests whose reader waited for the request budget, fetches that read less or waited because the fetch budget was short, and batches that waited to be decompressed.", []string{"budget"}, nil)
)

// RegisterBudgets adds the scrape-time metrics of the request, fetch and
// decompression budgets, labelled budget="requests", "fetch" and
// "decompress".
func (m *Metrics) RegisterBudgets(requests, fetch, decompress BudgetSource) {
	m.Registry.MustRegister(&budgetCollector{names: []string{"requests", "fetch", "decompress"}, srcs: []BudgetSource{requests, fetch, decompress}})
}

type budgetCollector struct {
	names []string
	srcs  []BudgetSource
}

func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBudgetReserved
	ch <- descBudgetLimit
	ch <- descBudgetWaits
}

func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	for i, src := range c.srcs {
		name := c.names[i]
		ch <- prometheus.MustNewConstMetric(descBudgetReserved, prometheus.GaugeValue, float64(src.Reserved()), name)
		ch <- prometheus.MustNewConstMetric(descBudgetLimit, prometheus.GaugeValue, float64(src.Limit()), name)
		ch <- prometheus.MustNewConstMetric(descBudgetWaits, prometheus.CounterValue, float64(src.Waits()), name)
	}
}
