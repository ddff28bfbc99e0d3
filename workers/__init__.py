"""Celery workers: plain inference now, proving on its own queue."""
