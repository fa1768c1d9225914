// Command chronik-server runs a Chronik node: a Kafka-compatible streaming
// server on a local durable log, alone or as a member of a Raft cluster.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "chronik-server:", err)
		os.Exit(exitCode(err))
	}
}
