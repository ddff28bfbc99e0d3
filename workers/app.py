"""The Celery application.

The app object exists at import time (Celery's CLI needs one) but holds no settings until
:func:`configure` is called, by ``oracle worker`` in a worker and by the node as producer.
"""

from __future__ import annotations

from celery import Celery

from oracle.settings import Settings

INFERENCE_QUEUE = "inference"
PROOF_QUEUE = "proof"
INFERENCE_TASK = "oracle.inference"
PROOF_TASK = "oracle.prove"

app = Celery("oracle", include=["workers.inference", "workers.proving"])


def configure(settings: Settings) -> Celery:
    """Point the app at the broker and apply the delivery guarantees we rely on."""
    app.conf.update(
        broker_url=settings.redis.url,
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,  # a task is acked after it ran, so a dead worker's job is redone
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=INFERENCE_QUEUE,
        task_routes={
            INFERENCE_TASK: {"queue": INFERENCE_QUEUE},
            PROOF_TASK: {"queue": PROOF_QUEUE},
        },
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        # Priorities (Redis lists per step, 0 read first): a proof owed to a challenge jumps
        # the proof queue (see enqueue_proof).
        broker_transport_options={
            "visibility_timeout": 3600,
            "priority_steps": list(range(10)),
            "sep": ":",
            "queue_order_strategy": "priority",
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    app.conf.oracle_settings = settings
    return app


def enqueue_inference(row_id: int) -> None:
    """Hand one request row to the inference queue (by id, never the row itself)."""
    app.send_task(INFERENCE_TASK, args=[row_id], queue=INFERENCE_QUEUE)


URGENT_PRIORITY = 0
NORMAL_PRIORITY = 5


def enqueue_proof(row_id: int, urgent: bool = False) -> None:
    """Hand one request row to the proof queue: a Zk proof, an optimistic answer's circuit
    output, or (``urgent``) a proof a challenge is waiting for, which goes first."""
    priority = URGENT_PRIORITY if urgent else NORMAL_PRIORITY
    app.send_task(PROOF_TASK, args=[row_id], queue=PROOF_QUEUE, priority=priority)
