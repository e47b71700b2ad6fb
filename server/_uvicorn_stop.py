"""A uvicorn server that stops as soon as it is asked, still gracefully.

uvicorn (0.32-0.55) has no documented way to stop a server from another thread: the answer upstream is to
set ``should_exit`` (uvicorn issue #742, "Uvicorn cannot be shutdown programmatically", and discussion
#1103). ``Server.main_loop`` notices it on its next 0.1 s tick, and ``Server.shutdown`` then sleeps a
fixed 0.1 s after asking the connections to close and polls for them every 0.1 s: a stop costs about
0.19 s, and the tests and the matrix stop hundreds of servers.

``PromptServer`` keeps uvicorn's steps and their order (stop accepting, ask every connection to close, wait
for the connections and their tasks within ``timeout_graceful_shutdown``, the lifespan's shutdown) and
changes only how it waits:

- ``main_loop`` waits on an event with uvicorn's 0.1 s tick as the timeout (``on_tick`` still runs every
  tick: the date header, ``limit_max_requests``, ``should_exit`` set by a signal handler), and ``wake()``
  (safe from any thread) sets that event;
- ``shutdown`` lets the connections' close run (a loop turn), then polls every ``POLL`` seconds for them
  and their tasks to be gone instead of every 0.1 s. So a connection still answering is finished, and its
  record entry written, before ``serve`` returns, as with uvicorn.

The internals used are the methods in ``_METHODS`` (``Server._serve`` calls ``main_loop`` then
``shutdown``), ``servers``, ``lifespan``, ``force_exit`` and ``server_state``; ``check_internals``
verifies them at import.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket

import uvicorn

logger = logging.getLogger("uvicorn.error")

POLL = 0.002  # seconds between looks at the connections still closing, during a shutdown only
TICK = 0.1  # uvicorn's own: on_tick runs this often

_METHODS = ("main_loop", "on_tick", "shutdown", "_serve", "startup")


def check_internals() -> None:
    """Raise RuntimeError if uvicorn's Server no longer has what ``PromptServer`` builds on."""
    missing = [name for name in _METHODS if not callable(getattr(uvicorn.Server, name, None))]
    server = uvicorn.Server(uvicorn.Config(app="unused:app", log_config=None))  # no logging set up by a check
    missing += [name for name in ("force_exit", "server_state") if not hasattr(server, name)]
    missing += [name for name in ("connections", "tasks") if not hasattr(server.server_state, name)]
    serve, startup = inspect.getsource(uvicorn.Server._serve), inspect.getsource(uvicorn.Server.startup)
    if "self.main_loop()" not in serve or "self.shutdown(" not in serve or "self.lifespan =" not in serve:
        missing.append("_serve setting lifespan and calling main_loop() then shutdown()")
    if "self.servers" not in startup:
        missing.append("startup setting servers")
    if missing:
        raise RuntimeError(
            f"uvicorn {uvicorn.__version__} changed what mtls_lab.server._uvicorn_stop needs: {', '.join(missing)}"
        )


check_internals()


class PromptServer(uvicorn.Server):
    """uvicorn's server; ``wake()`` after setting ``should_exit`` stops it without waiting for a tick."""

    _loop: asyncio.AbstractEventLoop | None = None
    _woken: asyncio.Event | None = None

    def wake(self) -> None:
        """Make the main loop look at ``should_exit`` now (from any thread; set ``should_exit`` first)."""
        loop, woken = self._loop, self._woken
        if loop is None or woken is None or loop.is_closed():
            return  # not in its main loop yet: it reads should_exit before it waits
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the server has stopped
            loop.call_soon_threadsafe(woken.set)

    async def main_loop(self) -> None:
        self._woken = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            try:
                async with asyncio.timeout(TICK):
                    await self._woken.wait()
            except TimeoutError:
                pass
            self._woken.clear()
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        logger.info("Shutting down")
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await asyncio.sleep(0)  # the closes just asked for run
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                await self._closed()
        except TimeoutError:
            logger.error("Cancel %s running task(s), timeout graceful shutdown exceeded", len(self.server_state.tasks))
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _closed(self) -> None:
        state = self.server_state
        if state.connections and not self.force_exit:
            logger.info("Waiting for connections to close. (CTRL+C to force quit)")
            while state.connections and not self.force_exit:
                await asyncio.sleep(POLL)
        if state.tasks and not self.force_exit:
            logger.info("Waiting for background tasks to complete. (CTRL+C to force quit)")
            while state.tasks and not self.force_exit:
                await asyncio.sleep(POLL)
        for server in self.servers:
            await server.wait_closed()
