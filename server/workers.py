"""``mtls-lab serve --workers N``: N server processes on one port, writing one record file.

- The parent checks everything a user can get wrong first (the settings, the PKI, the record file, the
  port), so a mistake is one line before any worker starts.
- Each worker is a fork of the parent. It listens on the port with its own socket (``SO_REUSEPORT``: the
  kernel spreads new connections across the workers), opens the record file itself and runs the same
  server one process runs: alert delivery, CA names, limits, the record. The file is opened with
  ``O_APPEND`` and every entry is one ``write`` call, so the lines of several processes never
  interleave and none is lost (``record.py``); connection ids carry a per-process prefix.
- ``/_lab/calls`` reads the file, so it shows every worker's calls; that is why several workers need
  ``--record``: calls kept in memory would be one worker's only. ``/_lab/health`` answers for the
  worker that took the connection (its ``record_errors``).
- Ctrl-C (SIGINT) or SIGTERM stops every worker gracefully: each finishes the requests it has and
  records its connections. The parent then ends as one server process ends: 130 after SIGINT, killed
  by SIGTERM after SIGTERM. A worker that dies stops the others, and the parent exits with an error.

Workers learn that they must stop through a pipe whose write end only the parent holds: when the
parent closes it, or dies, each worker's event loop reads end-of-file and shuts down.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import traceback
from types import FrameType

import uvicorn

from mtls_lab.errors import ExitCode, LabError
from mtls_lab.server.guard import LabUvicornServer
from mtls_lab.server.loaded import LoadedServer
from mtls_lab.server.record import CallRecord
from mtls_lab.server.run import banner, bind, configure_logging, uvicorn_config

READY_TIMEOUT = 30.0  # seconds for every worker to listen


class WorkerServer(LabUvicornServer):
    """The lab's uvicorn server in a worker: it also stops when the parent closes the stop pipe."""

    def __init__(self, config: uvicorn.Config, stop_fd: int) -> None:
        super().__init__(config)
        self.stop_fd = stop_fd

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        asyncio.get_running_loop().add_reader(self.stop_fd, self._told_to_stop)

    def _told_to_stop(self) -> None:
        asyncio.get_running_loop().remove_reader(self.stop_fd)
        self.should_exit = True
        self.wake()  # now, not at uvicorn's next 0.1 s tick


def serve_workers(loaded: LoadedServer, workers: int) -> None:
    """Run ``workers`` server processes on one port until SIGINT or SIGTERM (see the module's notes)."""
    config = loaded.config
    if config.record is None:
        raise LabError(
            f"--workers {workers} needs --record FILE: the workers share their calls through one record file "
            "(in memory, each would remember only its own)"
        )
    CallRecord(config.record).close()  # a record file that cannot be written is one line, now
    probe = bind(config.host, config.port, listen=False)  # the port is free (and, for 0, which one)
    port = probe.getsockname()[1]
    probe.close()
    configure_logging(config.quiet)
    stop_read, stop_write = os.pipe()
    ready_read, ready_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pids = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(stop_write)
            os.close(ready_read)
            os._exit(_worker(loaded, port, stop_read, ready_write))
        pids.append(pid)
    os.close(stop_read)
    os.close(ready_write)
    _Supervisor(pids, stop_write).run(loaded, port, ready_read)


def _worker(loaded: LoadedServer, port: int, stop_fd: int, ready_fd: int) -> int:
    """One worker process: serve until told to stop; its exit status."""
    code: int = ExitCode.OK
    try:
        record = CallRecord(loaded.config.record)
        try:
            sock = bind(loaded.config.host, port, reuse_port=True)
            server = WorkerServer(uvicorn_config(loaded, record), stop_fd)
            os.write(ready_fd, b"1")
            os.close(ready_fd)
            server.run(sockets=[sock])
        finally:
            record.close()
    except LabError as exc:
        print(f"mtls-lab: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C reached the worker too: it has stopped gracefully
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


class _Supervisor:
    """The parent: waits for its workers, stops them all on a signal or when one dies."""

    def __init__(self, pids: list[int], stop_fd: int) -> None:
        self.running = set(pids)
        self.stop_fd: int | None = stop_fd
        self.signal: int | None = None
        self.failure: str | None = None

    def run(self, loaded: LoadedServer, port: int, ready_fd: int) -> None:
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            if self._wait_ready(ready_fd) == len(self.running):
                print(banner(loaded, port, len(self.running)), flush=True)
            elif self.signal is None:  # (stopped while starting: not a failure)
                self.failure = "a worker did not start (see above)"
                self._stop_all()
            self._reap()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._stop_all()
        if self.failure is not None:
            raise LabError(f"{self.failure}: every worker is stopped; run again, or without --workers")
        if self.signal is not None:
            signal.raise_signal(self.signal)  # end as one server process ends: 130, or killed by SIGTERM

    def _wait_ready(self, ready_fd: int) -> int:
        """How many workers listen: each writes one byte; end-of-file once every worker wrote or died."""
        ready = 0
        try:
            while chunk := os.read(ready_fd, 64):
                ready += len(chunk)
        finally:
            os.close(ready_fd)
        return ready

    def _reap(self) -> None:
        while self.running:
            pid, status = os.waitpid(-1, 0)
            if pid not in self.running:
                continue
            self.running.discard(pid)
            if self.signal is None and self.failure is None:
                self.failure = f"worker {pid} stopped unexpectedly ({_status(status)})"
                self._stop_all()

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self.signal is None:
            self.signal = sig
        self._stop_all()

    def _stop_all(self) -> None:
        if self.stop_fd is not None:
            os.close(self.stop_fd)  # every worker's loop reads end-of-file and stops gracefully
            self.stop_fd = None


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
