"""A wake-up channel from workers to the relayer, so results are sent without polling delay.

It carries no data the pipeline depends on: the database row is the truth and the relayer
also scans on a timer, so a lost wake-up costs latency, never a request.
"""

from __future__ import annotations

import redis


class Notifier:
    def __init__(self, redis_url: str, chain_id: int, coordinator: str) -> None:
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.key = f"oracle:wake:{chain_id}:{coordinator.lower()}"

    def wake(self) -> None:
        pipe = self._redis.pipeline()
        pipe.rpush(self.key, b"1")
        pipe.ltrim(self.key, -16, -1)
        pipe.execute()

    def wait(self, timeout_s: float) -> bool:
        """Block until a wake-up or ``timeout_s``; True if woken. Drains extra wake-ups."""
        got = self._redis.blpop([self.key], timeout=timeout_s)
        if got is not None:
            self._redis.delete(self.key)
            return True
        return False

    def close(self) -> None:
        self._redis.close()
