#!/usr/bin/python3
"""The client scenario with confluent-kafka: Debian's python3-confluent-kafka
1.7 (librdkafka 2.0.2) under /usr/bin/python3, or PyPI's confluent-kafka
(bundling a current librdkafka) under the venv's python. Same phases and
output as kafka_python_scenario.py; the producer is always idempotent
(enable.idempotence=true) and compresses with zstd.
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from scenario_steps import key, produce_in_steps, value


def produce(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    topic = NewTopic(args.topic, num_partitions=3, replication_factor=args.replication)
    for _, f in admin.create_topics([topic]).items():
        f.result(timeout=30)
    errors = []
    ok = [0]

    def delivered(err, msg):
        if err is not None:
            errors.append(err)
        else:
            ok[0] += 1

    p = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 5, "compression.type": "zstd"})

    def send(i):
        while True:
            try:
                p.produce(args.topic, key=key(i), value=value(i), headers=[("idx", str(i))], on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)

    def flush():
        left = p.flush(120)
        if left or errors:
            sys.exit("%d messages undelivered, errors: %s" % (left, errors[:3]))

    def acked():
        p.poll(0)  # serves the delivery reports that arrived meanwhile
        return ok[0]

    produce_in_steps(args.count, args.kill_at, send, flush, acked)


def group(args):
    members = []
    started = [False]
    for n in range(2):
        c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group, "client.id": "ck-%d" % n,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "session.timeout.ms": 10000, "heartbeat.interval.ms": 500})

        def on_assign(consumer, partitions):
            # Assign here, then pause: the assign confluent-kafka does after
            # the callback returns clears a pause (librdkafka 2.16 fetches
            # the partitions at once).
            consumer.assign(partitions)
            if not started[0]:
                consumer.pause(partitions)

        c.subscribe([args.topic], on_assign=on_assign)
        members.append(c)
    deadline = time.time() + 120
    while True:
        for c in members:
            msg = c.poll(0.1)
            if msg is not None and not msg.error():
                sys.exit("a paused partition delivered %s [%d] offset %d" % (msg.topic(), msg.partition(), msg.offset()))
        owned = [len(c.assignment()) for c in members]
        if sum(owned) == 3 and all(owned):
            break
        if time.time() > deadline:
            sys.exit("group never assigned all partitions: %s" % owned)
    started[0] = True
    for c in members:
        c.resume(c.assignment())
    got = []
    taken = [{} for _ in members]
    while len(got) < args.count:
        if time.time() > deadline:
            sys.exit("consumed %d of %d" % (len(got), args.count))
        for m, c in enumerate(members):
            want = args.count - len(got)
            if want <= 0:
                break
            for msg in c.consume(num_messages=want, timeout=0.2):
                if msg.error():
                    raise KafkaException(msg.error())
                hdr = dict(msg.headers() or []).get("idx", b"").decode()
                got.append({"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                            "key": msg.key().decode(), "value": msg.value().decode(), "header": hdr})
                taken[m][msg.partition()] = msg.offset() + 1
    if args.commit:
        for c, offs in zip(members, taken):
            if offs:
                c.commit(offsets=[TopicPartition(args.topic, p, o) for p, o in offs.items()], asynchronous=False)
    for c in members:
        c.close()
    for r in got:
        print(json.dumps(r))


def admin(args):
    a = AdminClient({"bootstrap.servers": args.bootstrap})
    md = a.list_topics(timeout=10)
    assert args.topic in md.topics, list(md.topics)
    assert len(md.topics[args.topic].partitions) == 3
    res = ConfigResource(ConfigResource.Type.TOPIC, args.topic)
    cfg = a.describe_configs([res])[res].result(timeout=10)
    assert "retention.ms" in cfg, list(cfg)
    groups = [g.id for g in a.list_groups(timeout=10)]
    assert args.group in groups, groups
    print(json.dumps({"topics": sorted(md.topics), "groups": groups}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("phase", choices=["produce", "group", "admin"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", default="")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--commit", action="store_true")
    p.add_argument("--replication", type=int, default=1)
    p.add_argument("--kill-at", type=int, default=0, help="see scenario_steps.produce_in_steps")
    args = p.parse_args()
    {"produce": produce, "group": group, "admin": admin}[args.phase](args)


if __name__ == "__main__":
    main()
