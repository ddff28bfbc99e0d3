"""A loopback JSON-RPC proxy that misbehaves on purpose: slow, garbage, HTTP errors."""

from __future__ import annotations

import random
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("timeout", "garbage", "http500", "rpc_error", "truncated")


class FaultyRpcProxy:
    """Forwards to ``upstream``; with probability ``rate`` answers with a fault instead."""

    def __init__(self, upstream: str, rate: float = 0.0, delay_s: float = 3.0, seed: int = 1):
        self.upstream = upstream
        self.rate = rate
        self.delay_s = delay_s
        self.rng = random.Random(seed)
        self.counts: dict[str, int] = dict.fromkeys(("ok", *FAULTS), 0)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.handle(self, body)

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FaultyRpcProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _pick(self) -> str:
        with self._lock:
            fault = self.rng.choice(FAULTS) if self.rng.random() < self.rate else "ok"
            self.counts[fault] += 1
            return fault

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        fault = self._pick()
        if fault == "timeout":
            time.sleep(self.delay_s)  # longer than the client's timeout: it gives up first
        if fault == "http500":
            self._reply(handler, 500, b"internal error")
            return
        if fault == "garbage":
            self._reply(handler, 200, b"\x00<html>not json at all")
            return
        if fault == "rpc_error":
            self._reply(
                handler, 200, b'{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"busy"}}'
            )
            return
        request = urllib.request.Request(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = response.read()
        if fault == "truncated":
            answer = answer[: max(1, len(answer) // 2)]
        self._reply(handler, 200, answer)

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, payload: bytes) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client already gave up (the timeout case)
