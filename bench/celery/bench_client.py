"""Producer side of the Celery peer; prints one JSON object on stdout.

  bench_client.py send --queue Q --count N --id-prefix P
      Sends N noop tasks to Q with task ids P-0 ... P-(N-1), reusing one
      pooled producer (app.producer_or_acquire), as Celery's docs suggest for
      sending many tasks.
  bench_client.py latency --queue Q --iterations K --warmup W --id-prefix P
      K sequential round trips noop.apply_async(...).get() after W warm-up
      ones; prints every sample in milliseconds.
"""
import argparse
import json
import sys
import time

from bench_tasks import app, noop


def send(args):
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for i in range(args.count):
            noop.apply_async(queue=args.queue, task_id=f"{args.id_prefix}-{i}", producer=producer)
    return {"sent": args.count, "seconds": time.perf_counter() - started}


def latency(args):
    samples = []
    total = args.warmup + args.iterations
    for i in range(total):
        started = time.perf_counter()
        noop.apply_async(queue=args.queue, task_id=f"{args.id_prefix}-{i}").get(timeout=5)
        elapsed = (time.perf_counter() - started) * 1000.0
        if i >= args.warmup:
            samples.append(elapsed)
    return {"samples_ms": samples}


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("send")
    s.add_argument("--queue", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--id-prefix", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--queue", required=True)
    lat.add_argument("--iterations", type=int, required=True)
    lat.add_argument("--warmup", type=int, default=0)
    lat.add_argument("--id-prefix", required=True)
    args = parser.parse_args()
    result = send(args) if args.command == "send" else latency(args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
