"""A uvicorn server in a background thread on an already bound socket: for tests, the matrix and the demo.

Both the reference server (``RunningServer``) and the stand-in for Adobe's certificate API
(``mtls_lab.lifecycle.api.RunningAdobeApi``) run this way.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Self

from mtls_lab.errors import LabError
from mtls_lab.server._uvicorn_stop import PromptServer


class BackgroundServer:
    """Serve ``server`` on ``sock`` in a daemon thread: ``start()`` waits until it accepts, ``stop()`` joins it."""

    def __init__(self, server: PromptServer, sock: socket.socket, name: str) -> None:
        self._server = server
        self._sock = sock
        self.port: int = sock.getsockname()[1]
        self._name = name
        self._thread = threading.Thread(target=self._run, name=f"mtls-lab-{name}-{self.port}", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise LabError(f"the lab's {self._name} on port {self.port} did not start: see the log above")
            time.sleep(0.005)
        return self

    def request_stop(self) -> None:
        """Ask the server to stop without waiting (stop many at once, then ``stop`` each).

        Its main loop wakes at once (``PromptServer.wake``) instead of on uvicorn's next 0.1 s tick; the
        shutdown stays graceful: open connections are closed and recorded before ``stop`` returns.
        """
        self._server.should_exit = True
        self._server.wake()

    def stop(self) -> None:
        self.request_stop()
        self._thread.join(timeout=10)
        self._sock.close()
        self.closed()

    def closed(self) -> None:
        """Called once the server has stopped: release what the subclass holds."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
