// Command kfake-server runs franz-go's in-memory fake Kafka cluster (kfake)
// on a port, as the ceiling for the protocol path in benchmarks: it keeps
// every batch in memory and never touches a disk.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 19092, "port of the first broker")
	brokers := flag.Int("brokers", 1, "brokers")
	flag.Parse()
	ports := make([]int, *brokers)
	for i := range ports {
		ports[i] = *port + i
	}
	c, err := kfake.NewCluster(kfake.Ports(ports...), kfake.AllowAutoTopicCreation())
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake-server:", err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Println("kfake listening on", c.ListenAddrs())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
