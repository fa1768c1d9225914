#!/usr/bin/python3
"""Create topics with configs through librdkafka's admin API, as
librdkafka's own admin test (0081) does, and describe them. Prints one JSON
object: {"created": {topic: error name or null}, "configs": {topic:
{name: [value, source]}}}.

Usage: admin_configs.py BOOTSTRAP PREFIX
"""
import json
import sys

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

bootstrap, prefix = sys.argv[1], sys.argv[2]
a = AdminClient({"bootstrap.servers": bootstrap})
topics = [
    # librdkafka's 0081-admin: "Add various configuration properties".
    NewTopic(prefix + "-configs", 3, 1, config={"compression.type": "lz4", "delete.retention.ms": "900"}),
    NewTopic(prefix + "-compact", 1, 1, config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
                                                 "segment.ms": "60000", "preallocate": "true"}),
    # And "Add invalid config property", which the broker must refuse.
    NewTopic(prefix + "-invalid", 1, 1, config={"dummy.doesntexist": "broker is verifying this"}),
]
out = {"created": {}, "configs": {}}
for topic, f in a.create_topics(topics, request_timeout=30).items():
    try:
        f.result()
        out["created"][topic] = None
    except Exception as e:  # KafkaException carrying the broker's error
        out["created"][topic] = e.args[0].name()
for topic in (prefix + "-configs", prefix + "-compact"):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    for _, f in a.describe_configs([res], request_timeout=30).items():
        out["configs"][topic] = {
            name: [entry.value, entry.source] for name, entry in f.result().items()
        }
print(json.dumps(out))
