"""Commit offsets of a topic that does not exist with confluent-kafka
(librdkafka), as librdkafka's own test 0030 does, and print the error."""
import sys

from confluent_kafka import Consumer, KafkaException, TopicPartition

consumer = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "commit-unknown",
                     "session.timeout.ms": 6000})
try:
    consumer.commit(offsets=[TopicPartition("no-such-topic-0030", 0, 123),
                             TopicPartition("no-such-topic-0030", 1, 456)],
                    asynchronous=False)
    print("committed without error")
except KafkaException as e:
    print(e.args[0].name())
finally:
    consumer.close()
