"""A minimal Security Hub for scale runs (bench/benchmark.py --security-hub): BatchImportFindings
and GetFindings (REST-JSON, POST /findings/import and POST /findings) over a dict, on 127.0.0.1.

moto's server mode is what the tests use (selftests/integration/test_aws_publish.py); its import
looks each finding up in a list, which at 10,000 instances (hundreds of thousands of findings)
takes hours. This stand-in keeps moto's semantics (an import replaces a finding with the same
Id, filters are ignored, pages of MaxResults) with a dict, adds `latency` per call, and
refuses calls above `rate` per second with TooManyRequestsException (429), which botocore retries.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SecurityHubStandin:
    def __init__(self, latency: float = 0.0, rate: float = 0.0) -> None:
        self.latency, self.rate = latency, rate
        self.findings: dict[str, dict[str, Any]] = {}
        self.requests: collections.Counter[str] = collections.Counter()
        self._recent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.standin = self  # type: ignore[attr-defined]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> SecurityHubStandin:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        time.sleep(self.latency)
        now = time.monotonic()
        with self._lock:
            self.requests[path] += 1
            while self._recent and now - self._recent[0] > 1.0:
                self._recent.popleft()
            if self.rate and len(self._recent) >= self.rate:
                return 429, {"Message": "Rate exceeded"}
            self._recent.append(now)
            if path == "/findings/import":
                for finding in body["Findings"]:
                    self.findings[finding["Id"]] = self.findings.get(finding["Id"], {}) | finding
                return 200, {"FailedCount": 0, "SuccessCount": len(body["Findings"]), "FailedFindings": []}
            start = int(body.get("NextToken") or 0)
            end = start + int(body.get("MaxResults") or 100)
            page = list(self.findings.values())[start:end]
        return 200, {"Findings": page} | ({"NextToken": str(end)} if end < len(self.findings) else {})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        status, payload = self.server.standin.handle(self.path, body)  # type: ignore[attr-defined]
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("x-amzn-ErrorType", "TooManyRequestsException")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass
