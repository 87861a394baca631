"""A real S3-compatible store that runs offline: moto's server mode, as its own process on
127.0.0.1 (the SSM emulator uploads command output to it, the suite reads it back with boto3).
It accepts any credentials, so it holds only throwaway test output."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from types import TracebackType

import boto3
from botocore.client import BaseClient

from selftests.child import die_with_parent

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "emulator", "AWS_SECRET_ACCESS_KEY": "emulator"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoS3:
    """`with MotoS3("bucket") as s3: s3.endpoint_url, s3.environ`"""

    def __init__(self, bucket: str, startup_timeout: float = 30) -> None:
        self.bucket = bucket
        self.port = _free_port()
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def environ(self) -> dict[str, str]:
        """What points boto3's S3 client here (the SSM emulator's environ adds the rest)."""
        return {"AWS_ENDPOINT_URL_S3": self.endpoint_url, **CREDENTIALS}

    def client(self) -> BaseClient:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="emulator",
            aws_secret_access_key="emulator",
        )

    def __enter__(self) -> MotoS3:
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError(f"moto's S3 server did not start on port {self.port}") from None
                time.sleep(0.1)
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
