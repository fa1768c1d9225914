package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Without the jars the run stops at once and says how to get them.
func TestFindKafkaWithoutJars(t *testing.T) {
	_, err := findKafka(context.Background(), t.TempDir(), "1g")
	if err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Fatalf("err = %v, want one naming make deps", err)
	}
}

func TestFindKafkaVersion(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"kafka-clients-4.1.1.jar", "kafka_2.13-4.1.1.jar", "kafka-tools-4.1.1.jar"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := findKafka(context.Background(), dir, "1g")
	if err != nil {
		t.Fatal(err)
	}
	if d.version != "4.1.1" || d.classpath != filepath.Join(dir, "*") || d.java == "" {
		t.Fatalf("found %+v", d)
	}
}

func TestKafkaProperties(t *testing.T) {
	props := kafkaProperties(2, []int{9001, 9002, 9003}, []int{9101, 9102, 9103}, "/d/node-2/data")
	for _, want := range []string{
		"process.roles=broker,controller\n",
		"node.id=2\n",
		"controller.quorum.voters=1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103\n",
		"listeners=PLAINTEXT://127.0.0.1:9002,CONTROLLER://127.0.0.1:9102\n",
		"advertised.listeners=PLAINTEXT://127.0.0.1:9002\n",
		"log.dirs=/d/node-2/data\n",
		"min.insync.replicas=2\n",
		"offsets.topic.replication.factor=3\n",
	} {
		if !strings.Contains(props, want) {
			t.Errorf("properties lack %q:\n%s", want, props)
		}
	}
	// Kafka's defaults are measured: nothing here may change flushing.
	if strings.Contains(props, "flush") {
		t.Errorf("broker properties set flushing:\n%s", props)
	}
	single := kafkaProperties(1, []int{9001}, []int{9101}, "/d")
	for _, want := range []string{"min.insync.replicas=1\n", "transaction.state.log.min.isr=1\n", "default.replication.factor=1\n"} {
		if !strings.Contains(single, want) {
			t.Errorf("single-node properties lack %q:\n%s", want, single)
		}
	}
}
