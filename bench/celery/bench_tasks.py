"""The Celery peer of Conveyor's benchmark: one app, one no-op task.

Configured from the environment by bench/src/peers/celery.ts:
  BENCH_AMQP_URL           broker (the same RabbitMQ as Conveyor)
  BENCH_CELERY_RESULT_URL  Redis result backend, a database of its own (db 2 by default)
  BENCH_CELERY_PREFETCH    worker_prefetch_multiplier (default 64)

Settings follow Celery's own advice for many short tasks (docs, "Optimizing"):
a large worker_prefetch_multiplier ("Values like 50 or 150 might make sense
... Say 64, or 128"). Everything else stays at Celery's defaults -- prefork
pool, early acks (task_acks_late=False), JSON, durable queues and persistent
messages (like Conveyor's) -- except worker_enable_remote_control=False, so a
run declares nothing but its own queue (no pidbox exchanges left behind).
Results are stored (task_ignore_result=False, the default): the benchmark
counts finished tasks by their celery-task-meta-* keys.
"""
import os

from celery import Celery
from celery.signals import worker_ready

app = Celery(
    "bench_tasks",
    broker=os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@localhost:5672//"),
    backend=os.environ.get("BENCH_CELERY_RESULT_URL", "redis://localhost:6379/2"),
)
app.conf.update(
    worker_prefetch_multiplier=int(os.environ.get("BENCH_CELERY_PREFETCH", "64")),
    worker_enable_remote_control=False,
    task_ignore_result=False,
    result_expires=86400,
)


@app.task(name="noop")
def noop():
    """Does nothing: the cost of Celery's pipeline itself."""
    return None


@worker_ready.connect
def _announce_ready(**_kwargs):
    # The benchmark waits for this line before it times anything.
    print("BENCH-READY", flush=True)
