"""Headless Chromium driven over the DevTools protocol: open a page, read what it shows, screenshot it.

Why not just read the HTML: the reports must be checked as people see them (is the verdict on screen,
did the SVG ladder draw its arrows, did a script run or the policy block anything). Debian's ``chromium``
is started as root with the flags it needs there, a fresh profile, no network service of its own, and
its DevTools port on 127.0.0.1; ``websockets`` speaks the protocol. Each page:

- is opened offline (``Network.emulateNetworkConditions``): a report must render without network;
- records every request it makes (a self-contained report makes none but its own file) and every
  console error, uncaught exception and log error (a CSP violation is one).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",  # as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # the port chosen is written to DevToolsActivePort in the profile
]
VIEWPORT = (1280, 800)  # the "first screenful" of a laptop


class BrowserError(Exception):
    pass


@dataclass
class Page:
    browser: Browser
    session: str
    target: str
    loaded: bool = False
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        result = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, self.session)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = False, selector: str | None = None) -> Path:
        """The viewport, the whole page, or the box of one element (``selector``) as a PNG file."""
        params: dict[str, Any] = {"format": "png"}
        if selector is not None:
            box = self.evaluate(
                f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect(); "
                "return [r.left + scrollX, r.top + scrollY, r.width, r.height]; })()"
            )
            clip = dict(zip(("x", "y", "width", "height"), box, strict=True))
            params |= {"captureBeyondViewport": True, "clip": {**clip, "scale": 1}}
        elif full_page:
            width, height = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params |= {
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            }
        self.browser.send("Page.bringToFront", {}, self.session)  # a tab in the background paints nothing
        data = self.browser.send("Page.captureScreenshot", params, self.session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def settle(self) -> None:
        """Let pending console messages and events arrive."""
        self.evaluate("1")
        self.browser.drain(0.2)

    def close(self) -> None:
        with contextlib.suppress(BrowserError):
            self.browser.send("Target.closeTarget", {"targetId": self.target})


class Browser:
    """One Chromium for many pages; each page in its own target."""

    def __init__(self, executable: str) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="mtls-lab-chromium-"))
        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.exits = contextlib.ExitStack()  # websockets 17 wants its connection used as a context manager
        self.socket = self.exits.enter_context(connect(self._endpoint(), max_size=None, open_timeout=10))
        self.ids = itertools.count(1)
        self.pages: dict[str, Page] = {}

    def _endpoint(self, timeout: float = 20) -> str:
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserError(f"chromium exited with {self.process.returncode} at start-up")
            lines = active.read_text().split("\n") if active.exists() else []
            if len(lines) >= 2 and lines[1]:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        raise BrowserError("chromium did not open its DevTools port")

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv(timeout=30))
            if reply.get("id") == number:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self._event(reply)

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self._event(json.loads(self.socket.recv(timeout=left)))
            except TimeoutError:
                return

    def _event(self, event: dict[str, Any]) -> None:
        page = self.pages.get(event.get("sessionId", ""))
        if page is None:
            return
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            page.errors.append(
                "console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )
        elif method == "Runtime.exceptionThrown":
            page.errors.append("exception: " + json.dumps(params["exceptionDetails"])[:500])
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            page.errors.append(f"log ({params['entry'].get('source')}): {params['entry'].get('text')}")
        elif method == "Network.requestWillBeSent":
            page.requests.append(params["request"]["url"])
        elif method == "Page.loadEventFired":
            page.loaded = True

    def open(self, path: Path, viewport: tuple[int, int] = VIEWPORT) -> Page:
        """Open a local file offline, wait for its load event, and return the page."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        self.pages[session] = page
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", {}, session)
        self.send(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
            session,
        )
        width, height = viewport
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        # no scrollbar: a full-page or element capture then lays the page out exactly as the viewport did
        self.send("Emulation.setScrollbarsHidden", {"hidden": True}, session)
        self.send("Page.navigate", {"url": path.resolve().as_uri()}, session)
        deadline = time.monotonic() + 20
        while not page.loaded and time.monotonic() < deadline:
            self.drain(0.05)
        if not page.loaded:
            raise BrowserError(f"{path}: no load event within 20 s")
        page.settle()
        return page

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.exits.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        shutil.rmtree(self.profile, ignore_errors=True)
