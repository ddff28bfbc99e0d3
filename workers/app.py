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
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
    )
    app.conf.oracle_settings = settings
    return app


def enqueue_inference(row_id: int) -> None:
    """Hand one request row to the inference queue (by id, never the row itself)."""
    app.send_task(INFERENCE_TASK, args=[row_id], queue=INFERENCE_QUEUE)


def enqueue_proof(row_id: int) -> None:
    """Hand one inferred Zk request row to the proof queue."""
    app.send_task(PROOF_TASK, args=[row_id], queue=PROOF_QUEUE)
