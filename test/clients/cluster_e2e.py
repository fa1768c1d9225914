#!/usr/bin/python3
"""kafka-python side of the roadmap's cluster end-to-end test (task 1.4).

  produce  create the topic (3 partitions, replication factor 3) and produce
           --count messages "msg-<i>" with acks=all
  consume  read the topic from the start until --count messages arrived and
           print "partition offset value" per record
"""
import argparse
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic


def main():
    p = argparse.ArgumentParser()
    p.add_argument("phase", choices=["produce", "consume"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    a = p.parse_args()
    servers = a.bootstrap.split(",")
    if a.phase == "produce":
        admin = KafkaAdminClient(bootstrap_servers=servers)
        admin.create_topics([NewTopic(name=a.topic, num_partitions=3, replication_factor=3)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=servers, acks="all", retries=10)
        futures = [producer.send(a.topic, ("msg-%d" % i).encode()) for i in range(a.count)]
        producer.flush()
        for f in futures:
            f.get(timeout=60)
        producer.close()
        return
    consumer = KafkaConsumer(a.topic, bootstrap_servers=servers, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=30000)
    n = 0
    deadline = time.time() + 120
    for m in consumer:
        print(m.partition, m.offset, m.value.decode())
        n += 1
        if n >= a.count or time.time() > deadline:
            break
    consumer.close()
    if n < a.count:
        sys.exit("consumed %d of %d" % (n, a.count))


if __name__ == "__main__":
    main()
