"""A TCP relay on 127.0.0.1 whose connections a test can cut, as a lost network would.

    with Relay(vm.port) as relay:   # the suite connects to relay.port instead of vm.port
        ...
        relay.cut()                  # every connection open now ends with a TCP RST, both ways

Connections made after a cut pass as before (a client that reconnects gets through). One
thread accepts; each connection has its own pumping thread, which is also the only one that
closes its sockets (a close from another thread could race its select).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from types import TracebackType

RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self.wake_r, self.wake_w = socket.socketpair()
        self.closed = threading.Event()

    def pump(self) -> None:
        ends = {self.client: self.upstream, self.upstream: self.client}
        try:
            while True:
                ready, _, _ = select.select([self.client, self.upstream, self.wake_r], [], [])
                if self.wake_r in ready:  # cut(): reset both ends
                    for sock in ends:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    ends[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in (*ends, self.wake_r):
                sock.close()
            self.closed.set()

    def reset(self) -> None:
        with contextlib.suppress(OSError):
            self.wake_w.send(b"x")
        self.closed.wait()
        self.wake_w.close()


class Relay:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0  # connections relayed so far
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name=f"relay-{self.port}", daemon=True)

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # close(): the listener is gone
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
                client.close()
                continue
            upstream.settimeout(None)
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs = [p for p in self._pairs if not p.closed.is_set()] + [pair]
                self.accepted += 1
            threading.Thread(target=pair.pump, name=f"relay-{self.port}-pump", daemon=True).start()

    def cut(self) -> int:
        """Reset every open connection (RST to both peers); returns how many were open."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        live = [p for p in pairs if not p.closed.is_set()]
        for pair in pairs:
            pair.reset()
        return len(live)

    def close(self) -> None:
        """Stop accepting and reset what is still open."""
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._thread.join(5)
        self.cut()
