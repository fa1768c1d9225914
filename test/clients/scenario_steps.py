"""What the client scenario scripts share: the records they produce and the
hand-shake with the Go test that kills a partition leader while a producer
runs (cluster mode of test/pyclients_test.go).
"""
import json
import sys


def key(i):
    return "key-%05d" % i


def value(i):
    return "value-%05d-payload" % i


def produce_in_steps(count, kill_at, send, flush, acked):
    """Hands records 0..count-1 to the client through send(i); flush() must
    return only once every record handed over is acknowledged, and exit or
    raise on a failed delivery; acked() counts the records acknowledged so
    far.

    With kill_at, the first kill_at records are acknowledged first; the next
    kill_at are handed to the client; then the script prints {"kill": n},
    and the test kills the leader and answers "killed" on stdin while the
    client sends them; the rest are handed over after the kill. kill_at equal
    to count kills with every record acknowledged and the producer still open.
    """
    if not kill_at:
        for i in range(count):
            send(i)
        flush()
        return
    first = min(kill_at, count)
    for i in range(first):
        send(i)
    flush()
    second = min(2 * kill_at, count)
    for i in range(first, second):
        send(i)
    print(json.dumps({"kill": first}), flush=True)
    answer = sys.stdin.readline().strip()
    if answer != "killed":
        sys.exit("expected 'killed' on stdin, read %r" % answer)
    print(json.dumps({"acked_at_kill": acked(), "handed": second}), flush=True)
    for i in range(second, count):
        send(i)
    flush()
