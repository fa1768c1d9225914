#!/usr/bin/python3
"""Read partition 0 of a topic from its start to its end with
confluent-kafka (librdkafka) and print one JSON line per record:
{"offset": o, "key": k, "value": v} with v null for a tombstone.

Usage: read_topic.py BOOTSTRAP TOPIC
"""
import json
import sys

from confluent_kafka import Consumer, KafkaError, TopicPartition

bootstrap, topic = sys.argv[1], sys.argv[2]
c = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "read-topic",
    "enable.auto.commit": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "earliest",
})
c.assign([TopicPartition(topic, 0, 0)])
while True:
    m = c.poll(30)
    if m is None:
        sys.exit("no record and no end of partition within 30 s")
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            break
        sys.exit("consume: %s" % m.error())
    v = m.value()
    print(json.dumps({
        "offset": m.offset(),
        "key": m.key().decode() if m.key() is not None else None,
        "value": v.decode() if v is not None else None,
    }))
c.close()
