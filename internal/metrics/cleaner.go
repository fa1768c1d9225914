package metrics

import "github.com/prometheus/client_golang/prometheus"

// CleanerStats is what the log cleaner did since the node started
// (storage.CleanerStats, kept apart so that metrics needs no storage import).
type CleanerStats struct {
	Passes, SegmentsCleaned, BytesRead, BytesWritten, BytesReclaimed, RecordsRemoved, Errors int64
	BatchesTooLarge                                                                          int64
	Seconds                                                                                  float64
}

var (
	descCleanerPasses = prometheus.NewDesc("chronik_log_cleaner_passes_total",
		"Compaction passes over a log that rewrote at least one segment.", nil, nil)
	descCleanerSegments = prometheus.NewDesc("chronik_log_cleaner_segments_cleaned_total",
		"Segments the log cleaner rewrote.", nil, nil)
	descCleanerRead = prometheus.NewDesc("chronik_log_cleaner_read_bytes_total",
		"Bytes the log cleaner read (key map and rewrite passes).", nil, nil)
	descCleanerWritten = prometheus.NewDesc("chronik_log_cleaner_written_bytes_total",
		"Bytes the log cleaner wrote, including rewrites it discarded because nothing changed.", nil, nil)
	descCleanerReclaimed = prometheus.NewDesc("chronik_log_cleaner_reclaimed_bytes_total",
		"Bytes freed by compaction: size of the rewritten segments before minus after.", nil, nil)
	descCleanerRecords = prometheus.NewDesc("chronik_log_cleaner_records_removed_total",
		"Records compaction removed: replaced by a later record of their key, expired tombstones, records without a key.", nil, nil)
	descCleanerErrors = prometheus.NewDesc("chronik_log_cleaner_errors_total",
		"Compaction passes that failed (retried at the next pass).", nil, nil)
	descCleanerSeconds = prometheus.NewDesc("chronik_log_cleaner_seconds_total",
		"Time spent in compaction passes that rewrote something.", nil, nil)
	descCleanerTooLarge = prometheus.NewDesc("chronik_log_cleaner_batches_too_large_total",
		"Batches the log cleaner kept as they are because their records expand to more than the decompression budget holds.", nil, nil)
)

// RegisterCleaner adds the scrape-time metrics of the log cleaner.
func (m *Metrics) RegisterCleaner(stats func() CleanerStats) {
	m.Registry.MustRegister(cleanerCollector(stats))
}

type cleanerCollector func() CleanerStats

func (c cleanerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCleanerPasses, descCleanerSegments, descCleanerRead, descCleanerWritten,
		descCleanerReclaimed, descCleanerRecords, descCleanerErrors, descCleanerSeconds, descCleanerTooLarge} {
		ch <- d
	}
}

func (c cleanerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	counter(descCleanerPasses, float64(s.Passes))
	counter(descCleanerSegments, float64(s.SegmentsCleaned))
	counter(descCleanerRead, float64(s.BytesRead))
	counter(descCleanerWritten, float64(s.BytesWritten))
	counter(descCleanerReclaimed, float64(s.BytesReclaimed))
	counter(descCleanerRecords, float64(s.RecordsRemoved))
	counter(descCleanerErrors, float64(s.Errors))
	counter(descCleanerSeconds, s.Seconds)
	counter(descCleanerTooLarge, float64(s.BatchesTooLarge))
}
