#!/usr/bin/python3
"""The client scenario with kafka-python: Debian's python3-kafka 2.0.2 under
/usr/bin/python3, or PyPI's kafka-python 2.x under the venv's python.

Run by test/pyclients_test.go, one phase at a time, against a real
chronik-server; the Go test kills and restarts the server between phases and
checks what each phase printed.

  produce  create the topic (3 partitions) and produce N keyed messages with an
           "idx" header, acks=all, gzip; idempotent with --idempotent (kafka-python
           2.1 and later), and with --kill-at a leader is killed on the way
           (scenario_steps.produce_in_steps)
  group    consume exactly --count messages with a group of two members and
           commit exactly what was consumed
  admin    list and describe topics, configs and groups

Consumed records are printed as JSON lines: topic, partition, offset, key,
value, header.
"""
import argparse
import json
import sys
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from scenario_steps import key, produce_in_steps, value


def produce(args):
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id="kp-admin")
    admin.create_topics([NewTopic(name=args.topic, num_partitions=3, replication_factor=args.replication)])
    admin.close()
    # gzip: the codec kafka-python has without extra packages.
    opts = {"acks": "all", "retries": 5, "linger_ms": 5, "compression_type": "gzip"}
    if args.idempotent:
        # kafka-python 2.0.2 has no such setting and refuses it.
        opts = {"acks": "all", "enable_idempotence": True, "linger_ms": 5, "compression_type": "gzip"}
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, **opts)
    futures = []

    def send(i):
        futures.append(producer.send(args.topic, key=key(i).encode(), value=value(i).encode(),
                                     headers=[("idx", str(i).encode())]))

    def flush():
        producer.flush()
        for f in futures:
            f.get(timeout=30)  # raises on any failed send

    def acked():
        return sum(1 for f in futures if f.succeeded())

    produce_in_steps(args.count, args.kill_at, send, flush, acked)
    producer.close()


def offset_and_metadata(offset):
    # kafka-python 2.1 added the leader epoch (-1: unknown) to the tuple.
    if "leader_epoch" in OffsetAndMetadata._fields:
        return OffsetAndMetadata(offset, "", -1)
    return OffsetAndMetadata(offset, None)


class PauseUntilStarted(ConsumerRebalanceListener):
    """Pauses newly assigned partitions until the group is stable, so that no
    record is consumed by a member that then loses its partition."""

    def __init__(self, member):
        self.member = member

    def on_partitions_revoked(self, revoked):
        pass

    def on_partitions_assigned(self, assigned):
        if not self.member.started.is_set():
            self.member.consumer.pause(*assigned)


class Member(threading.Thread):
    """One group member on its own thread: kafka-python joins a group inside
    poll(), so two members polled from one thread would wait on each other."""

    def __init__(self, args, n, shared):
        super().__init__(daemon=True)
        self.args, self.shared = args, shared
        self.started = threading.Event()
        self.stop = threading.Event()
        self.owned = 0
        self.taken = {}  # tp -> next offset to commit
        self.error = None
        self.consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=args.group,
                                      client_id="kp-%d" % n, enable_auto_commit=False,
                                      auto_offset_reset="earliest", session_timeout_ms=10000,
                                      heartbeat_interval_ms=500)
        self.consumer.subscribe([args.topic], listener=PauseUntilStarted(self))

    def run(self):
        try:
            self.loop()
        except Exception as e:  # reported by the main thread
            self.error = e

    def loop(self):
        c = self.consumer
        while not self.started.is_set() and not self.stop.is_set():
            for tp, records in c.poll(timeout_ms=100).items():
                if records:
                    raise RuntimeError("paused partition %s delivered offset %d" % (tp, records[0].offset))
            self.owned = len(c.assignment())
        if self.stop.is_set():
            return
        c.resume(*c.assignment())
        while not self.stop.is_set():
            want = self.shared.remaining()
            if want <= 0:
                break
            batch = c.poll(timeout_ms=200, max_records=want)
            for tp, records in batch.items():
                for r in records:
                    if not self.shared.take(r):
                        break  # the total is reached: leave the rest uncommitted
                    self.taken[tp] = r.offset + 1
        if self.args.commit and self.taken:
            c.commit({tp: offset_and_metadata(off) for tp, off in self.taken.items()})


class Shared:
    """Counts records across members and stops at exactly the number wanted."""

    def __init__(self, count):
        self.count, self.got, self.lock = count, [], threading.Lock()

    def remaining(self):
        with self.lock:
            return self.count - len(self.got)

    def take(self, r):
        with self.lock:
            if len(self.got) >= self.count:
                return False
            hdr = dict(r.headers).get("idx", b"").decode()
            self.got.append({"topic": r.topic, "partition": r.partition, "offset": r.offset,
                             "key": r.key.decode(), "value": r.value.decode(), "header": hdr})
            return True


def group(args):
    shared = Shared(args.count)
    members = [Member(args, n, shared) for n in range(2)]
    for m in members:
        m.start()
    deadline = time.time() + 120
    while True:
        owned = [m.owned for m in members]
        if sum(owned) == 3 and all(owned):
            break
        if time.time() > deadline or any(m.error for m in members):
            sys.exit("group never assigned all partitions: %s %s" % (owned, [m.error for m in members]))
        time.sleep(0.05)
    for m in members:
        m.started.set()
    while shared.remaining() > 0:
        if time.time() > deadline or any(m.error for m in members):
            sys.exit("consumed %d of %d: %s" % (len(shared.got), args.count, [m.error for m in members]))
        time.sleep(0.05)
    for m in members:
        m.stop.set()
    for m in members:
        m.join(60)
        if m.error:
            sys.exit("member failed: %s" % m.error)
        m.consumer.close(autocommit=False)
    for r in shared.got:
        print(json.dumps(r))


def retrying(call):
    """Calls call() until it returns or fails with an error Kafka does not
    call retriable. kafka-python's admin client gives up on the first
    retriable error (such as COORDINATOR_NOT_AVAILABLE while a group's
    coordinator moves, or a node's metadata lags), where Kafka's own admin
    client retries until its timeout."""
    deadline = time.time() + 30
    while True:
        try:
            return call()
        except KafkaError as e:
            if not e.retriable or time.time() > deadline:
                raise
            print("retrying after %r" % e, file=sys.stderr)
            time.sleep(0.2)


def admin(args):
    a = KafkaAdminClient(bootstrap_servers=args.bootstrap, client_id="kp-admin")
    topics = retrying(a.list_topics)
    assert args.topic in topics, topics
    desc = retrying(lambda: a.describe_topics([args.topic]))
    assert len(desc[0]["partitions"]) == 3, desc
    cfg = retrying(lambda: a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, args.topic)]))
    names = [c[0] for c in cfg[0].resources[0][4]]
    assert "retention.ms" in names, names
    groups = [g[0] for g in retrying(a.list_consumer_groups)]
    assert args.group in groups, groups
    gd = retrying(lambda: a.describe_consumer_groups([args.group]))
    assert gd[0].group == args.group, gd
    offsets = retrying(lambda: a.list_consumer_group_offsets(args.group))
    assert sum(o.offset for o in offsets.values()) == args.count, offsets
    a.close()
    print(json.dumps({"topics": sorted(topics), "groups": groups}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("phase", choices=["produce", "group", "admin"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", default="")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--commit", action="store_true")
    p.add_argument("--replication", type=int, default=1)
    p.add_argument("--idempotent", action="store_true")
    p.add_argument("--kill-at", type=int, default=0, help="see scenario_steps.produce_in_steps")
    args = p.parse_args()
    {"produce": produce, "group": group, "admin": admin}[args.phase](args)


if __name__ == "__main__":
    main()
