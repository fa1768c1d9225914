package main

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/chronik-stream/chronik/internal/config"
)

// setMemoryLimit gives the Go runtime a soft memory limit derived from the
// configured bounds (config.Config.MemoryLimit), unless GOMEMLIMIT is set:
// the operator's choice wins, GOMEMLIMIT=off included. Without it the
// collector lets the heap grow to twice its live size, so the garbage of
// freed request and response buffers adds up to the live size again: under
// both floods of test/bounds_test.go the peak RSS was 363-522 MiB without
// the limit and 310-361 MiB with it (docs/configuration.md, "Resource
// bounds").
func setMemoryLimit(cfg config.Config, logger *slog.Logger) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		logger.Info("Go soft memory limit from GOMEMLIMIT", "GOMEMLIMIT", v)
		return
	}
	limit := cfg.MemoryLimit()
	debug.SetMemoryLimit(limit)
	logger.Info("Go soft memory limit set from the configured bounds", "bytes", limit)
}
