#!/usr/bin/python3
"""Consumer groups and deleted or re-created topics with confluent-kafka
(librdkafka): Debian's python3-confluent-kafka 1.7 (librdkafka 2.0.2) under
/usr/bin/python3, or PyPI's confluent-kafka under the venv's python.

One run is one scenario; it prints one JSON object a line, the events that
test/group_topics_test.go checks:

  delete    members subscribe to KEEP and GONE and consume them; GONE is
            deleted; the group rebalances onto KEEP alone, goes on
            consuming KEEP and commits.
  recreate  as delete, then GONE is created again under the same name and
            written to: the members consume it from its start (offsets of
            the deleted topic must not be applied to the new one).
  regex     members subscribe to a pattern matching KEEP; a topic matching
            it (NEW) is created later and consumed; then KEEP is deleted
            and the group rebalances onto NEW.

Every scenario ends with each member's close(), bounded by --close-timeout
so a client that hangs there is reported instead of waited for.
"""
import argparse
import json
import os
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

OFFSET_INVALID = -1001  # librdkafka: no committed offset


def emit(event, **fields):
    fields["event"] = event
    print(json.dumps(fields), flush=True)


def fail(what):
    emit("failed", what=what)
    sys.stdout.flush()
    os._exit(1)


class Member:
    """One consumer of the group and what it saw."""

    def __init__(self, args, n):
        conf = {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "client.id": "member-%d" % n,
            "partition.assignment.strategy": args.strategy,
            "auto.offset.reset": "earliest",
            # Auto-commit on, as by default, but only when partitions are
            # revoked or lost within a run (no periodic commit).
            "auto.commit.interval.ms": 600000,
            "session.timeout.ms": 10000,
            "topic.metadata.refresh.interval.ms": 1000,
        }
        if os.environ.get("RDKAFKA_DEBUG"):
            conf["debug"] = os.environ["RDKAFKA_DEBUG"]
        if args.static:
            conf["group.instance.id"] = "%s-instance-%d" % (args.group, n)
        self.name = conf["client.id"]
        self.consumer = Consumer(conf)
        self.callbacks = []  # (kind, [(topic, partition)], when)
        self.records = {}  # (topic, partition, offset) -> value
        self.errors = []

    def subscribe(self, topics):
        def note(kind):
            def cb(consumer, partitions):
                self.callbacks.append((kind, sorted((p.topic, p.partition) for p in partitions), time.time()))
            return cb
        self.consumer.subscribe(topics, on_assign=note("assign"), on_revoke=note("revoke"), on_lost=note("lost"))

    def poll(self, timeout):
        msg = self.consumer.poll(timeout)
        if msg is None:
            return
        if msg.error() is not None:
            # A deleted topic's partitions report errors until they are
            # dropped from the assignment: noted, not fatal.
            self.errors.append(str(msg.error()))
            return
        self.records[(msg.topic(), msg.partition(), msg.offset())] = msg.value().decode()

    def assignment(self):
        return sorted((p.topic, p.partition) for p in self.consumer.assignment())

    def callbacks_since(self, since):
        return [(kind, parts) for kind, parts, when in self.callbacks if when >= since]

    def commit(self, topics):
        """Commits the position after the last record consumed of each
        assigned partition of topics; returns the error, or None."""
        offsets = []
        for topic, partition in self.assignment():
            if topic not in topics:
                continue
            seen = [o for (t, p, o) in self.records if t == topic and p == partition]
            if seen:
                offsets.append(TopicPartition(topic, partition, max(seen) + 1))
        if not offsets:
            return None
        try:
            for tp in self.consumer.commit(offsets=offsets, asynchronous=False):
                if tp.error is not None:
                    return "%s[%d]: %s" % (tp.topic, tp.partition, tp.error)
        except KafkaException as e:
            return str(e.args[0])
        return None


def poll_until(members, what, done, timeout):
    """Polls every member until done() or timeout; returns the seconds it
    took, failing the run on timeout."""
    start = time.time()
    while not done():
        if time.time() - start > timeout:
            fail("%s: not within %ds; assignments %s, callbacks %s, errors %s" % (
                what, timeout, [m.assignment() for m in members],
                [m.callbacks[-4:] for m in members], [m.errors[-3:] for m in members]))
        for m in members:
            m.poll(0.05)
    return round(time.time() - start, 1)


def received(members, topic):
    out = {}
    for m in members:
        for (t, p, o), v in m.records.items():
            if t == topic:
                out[(p, o)] = v
    return out


def produce(bootstrap, topic, partitions, per_partition, prefix):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(str(err))
    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, value=("%s-%d-%d" % (prefix, part, i)).encode(), partition=part, on_delivery=delivered)
    left = p.flush(60)
    if left or errors:
        fail("produce to %s: %d undelivered, errors %s" % (topic, left, errors[:3]))


def create(admin, topic, partitions):
    for _, f in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=-1)]).items():
        f.result(timeout=30)


def delete(admin, topic):
    for _, f in admin.delete_topics([topic], operation_timeout=30).items():
        f.result(timeout=30)


def wait_rebalanced(members, topics, partitions, since, what):
    """Waits until every member has been given an assignment since `since`
    (the group completed a rebalance) and together they hold exactly the
    partitions of topics (partitions[topic] each), each member some when
    there are enough: a cooperative rebalance's first round may give a
    member nothing, and its second round is still to come."""
    want = sorted((t, p) for t in topics for p in range(partitions[t]))

    def done():
        union = sorted(tp for m in members for tp in m.assignment())
        return union == want and all(
            any(kind == "assign" for kind, _ in m.callbacks_since(since)) and
            (m.assignment() or len(want) < len(members)) for m in members)
    secs = poll_until(members, what, done, 60)
    emit("rebalanced", what=what, secs=secs,
         assignments={m.name: m.assignment() for m in members},
         callbacks={m.name: m.callbacks_since(since) for m in members})


def consume_all(members, topic, partitions, per_partition, what):
    want = partitions * per_partition
    secs = poll_until(members, what, lambda: len(received(members, topic)) >= want, 60)
    emit("consumed", what=what, topic=topic, records=len(received(members, topic)), secs=secs)


def commit_all(members, topics, what):
    errors = {}
    for m in members:
        deadline = time.time() + 30
        err = m.commit(topics)
        while err is not None and "REBALANCE_IN_PROGRESS" in err and time.time() < deadline:
            # The group is between generations (a member noticed a new
            # topic, or a cooperative rebalance's second round): as an
            # application would, poll until it is done and commit again.
            for _ in range(10):
                for other in members:
                    other.poll(0.05)
            err = m.commit(topics)
        if err is not None:
            errors[m.name] = err
    emit("committed", what=what, errors=errors)


def committed_offsets(member, topic, partitions):
    """The group's committed offsets of topic, as OffsetFetch answers."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    return sorted((tp.partition, tp.offset) for tp in member.consumer.committed(tps, timeout=10))


def close_all(members, timeout):
    for m in members:
        start = time.time()
        t = threading.Thread(target=m.consumer.close, daemon=True)
        t.start()
        t.join(timeout)
        emit("closed", member=m.name, done=not t.is_alive(), secs=round(time.time() - start, 1))


def scenario(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    parts = {args.keep: args.keep_partitions, args.gone: args.gone_partitions}
    if args.scenario == "regex":
        create(admin, args.keep, args.keep_partitions)
        produce(args.bootstrap, args.keep, args.keep_partitions, args.count, "keep")
    else:
        create(admin, args.keep, args.keep_partitions)
        create(admin, args.gone, args.gone_partitions)
        produce(args.bootstrap, args.keep, args.keep_partitions, args.count, "keep")
        produce(args.bootstrap, args.gone, args.gone_partitions, args.count, "gone")

    members = [Member(args, n) for n in range(args.members)]
    for m in members:
        m.subscribe([args.pattern] if args.scenario == "regex" else [args.keep, args.gone])
    emit("libversion", version=__import__("confluent_kafka").libversion()[0])
    # Every member in the group before anything is consumed: a member that
    # joins late starts a rebalance that the others finish only from
    # poll(), and a blocking call (committed()) made meanwhile waits
    # behind the rejoining member's JoinGroup, against Kafka as here.
    wait_rebalanced(members, [args.keep] if args.scenario == "regex" else [args.keep, args.gone], parts, 0,
                    "the group formed")

    if args.scenario == "regex":
        consume_all(members, args.keep, args.keep_partitions, args.count, "the topic the pattern matched")
        # A topic created later that matches the pattern joins the
        # subscription.
        since = time.time()
        create(admin, args.gone, args.gone_partitions)
        produce(args.bootstrap, args.gone, args.gone_partitions, args.count, "new")
        wait_rebalanced(members, [args.keep, args.gone], parts, since, "a new topic matching the pattern")
        consume_all(members, args.gone, args.gone_partitions, args.count, "the new topic")
        commit_all(members, [args.keep, args.gone], "both topics")
        # The first one is deleted: the group goes on with the new one.
        since = time.time()
        delete(admin, args.keep)
        emit("deleted", topic=args.keep)
        wait_rebalanced(members, [args.gone], parts, since, "deleted topic dropped")
        produce(args.bootstrap, args.gone, args.gone_partitions, args.count, "more")
        consume_all(members, args.gone, args.gone_partitions, 2 * args.count, "the new topic after the deletion")
        commit_all(members, [args.gone], "after the deletion")
        close_all(members, args.close_timeout)
        return

    consume_all(members, args.keep, args.keep_partitions, args.count, "kept topic")
    consume_all(members, args.gone, args.gone_partitions, args.count, "topic to delete")
    commit_all(members, [args.keep, args.gone], "before the deletion")
    emit("offsets", when="before the deletion", offsets=committed_offsets(members[0], args.gone, args.gone_partitions))
    # Records consumed and not committed yet: librdkafka commits them when
    # the deleted topic's partitions leave the assignment, which fails
    # (UNKNOWN_TOPIC_OR_PARTITION) and is retried before it rejoins.
    produce(args.bootstrap, args.gone, args.gone_partitions, args.count, "uncommitted")
    consume_all(members, args.gone, args.gone_partitions, 2 * args.count, "topic to delete, uncommitted")

    since = time.time()
    delete(admin, args.gone)
    emit("deleted", topic=args.gone)
    wait_rebalanced(members, [args.keep], parts, since, "deleted topic dropped")
    # The group goes on: the kept topic's new records are consumed and
    # committed by the members of the new generation.
    produce(args.bootstrap, args.keep, args.keep_partitions, args.count, "after")
    consume_all(members, args.keep, args.keep_partitions, 2 * args.count, "kept topic after the deletion")
    commit_all(members, [args.keep], "after the deletion")
    emit("offsets", when="after the deletion", offsets=committed_offsets(members[0], args.gone, args.gone_partitions))

    if args.scenario == "recreate":
        for m in members:
            for key in [k for k in m.records if k[0] == args.gone]:
                del m.records[key]
        since = time.time()
        create(admin, args.gone, args.gone_partitions)
        produce(args.bootstrap, args.gone, args.gone_partitions, 2 * args.count, "new")
        wait_rebalanced(members, [args.keep, args.gone], parts, since, "topic created again")
        consume_all(members, args.gone, args.gone_partitions, 2 * args.count, "topic created again")
        got = received(members, args.gone)
        emit("recreated", offsets=sorted(got), values=sorted(got.values()))
        commit_all(members, [args.keep, args.gone], "the topic created again")
    close_all(members, args.close_timeout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["delete", "recreate", "regex"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--keep", required=True, help="topic kept (regex: matched from the start, deleted later)")
    ap.add_argument("--gone", required=True, help="topic deleted (regex: created later)")
    ap.add_argument("--pattern", help="regex subscription, e.g. ^prefix-.*")
    ap.add_argument("--keep-partitions", type=int, default=4)
    ap.add_argument("--gone-partitions", type=int, default=2)
    ap.add_argument("--count", type=int, default=5, help="records per partition")
    ap.add_argument("--strategy", default="cooperative-sticky")
    ap.add_argument("--members", type=int, default=1)
    ap.add_argument("--static", action="store_true", help="static members (group.instance.id)")
    ap.add_argument("--close-timeout", type=float, default=20)
    args = ap.parse_args()
    if args.scenario == "regex" and not args.pattern:
        ap.error("regex needs --pattern")
    scenario(args)
    sys.stdout.flush()
    # A consumer whose close() hung still holds librdkafka's threads.
    os._exit(0)


if __name__ == "__main__":
    main()
