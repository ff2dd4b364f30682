"""Debian's Chromium, headless, driven over the Chrome DevTools Protocol: open a page, evaluate
JavaScript in it, wait for a state, take a screenshot. The protocol is JSON over a WebSocket; aiohttp's
client speaks it, on an event loop of this object's own, so tests stay synchronous."""

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

# How this machine runs it headless (no sandbox as root, no GPU, no calls home).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage",
         "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=en-US"]


class PageError(AssertionError):
    pass


class Chromium:
    def __init__(self, profile: Path) -> None:
        binary = shutil.which("chromium")
        assert binary, "Debian's chromium is installed by scripts/setup.sh"
        profile.mkdir(parents=True, exist_ok=True)
        # Chromium writes the port it picked (and its browser endpoint) here once it listens.
        active = profile / "DevToolsActivePort"
        active.unlink(missing_ok=True)
        self.log = open(profile.parent / f"{profile.name}.log", "wb")
        self.proc = subprocess.Popen([binary, *FLAGS, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                                      f"--user-data-dir={profile}", "about:blank"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "TZ": "UTC"})
        deadline = time.monotonic() + 30
        while not (active.exists() and len(active.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"chromium did not start; see {self.log.name}")
            time.sleep(0.1)
        self.port = int(active.read_text().splitlines()[0])

    def new_page(self, width: int, height: int) -> "Page":
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(req, timeout=10) as r:
            target = json.loads(r.read())
        return Page(self.port, target, width, height)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Page:
    """One tab. JavaScript exceptions and console errors the page raises are kept in `problems`."""

    def __init__(self, port: int, target: dict, width: int, height: int) -> None:
        self.port, self.id = port, target["id"]
        self.problems: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._next = 0
        self._run(self._connect(target["webSocketDebuggerUrl"]))
        self.call("Runtime.enable")
        self.call("Page.enable")
        self.resize(width, height)

    def _run(self, coro):
        return self._loop.run_until_complete(coro)

    async def _connect(self, url: str) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(url, max_msg_size=0)

    async def _call(self, method: str, params: dict) -> dict:
        self._next += 1
        await self._ws.send_str(json.dumps({"id": self._next, "method": method, "params": params}))
        while True:
            msg = await asyncio.wait_for(self._ws.receive(), 120)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise PageError(f"DevTools connection closed during {method}: {msg.type}")
            data = json.loads(msg.data)
            if data.get("id") == self._next:
                if "error" in data:
                    raise PageError(f"{method}: {data['error']}")
                return data["result"]
            self._event(data)

    def _event(self, data: dict) -> None:
        params = data.get("params", {})
        if data.get("method") == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            self.problems.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif data.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.problems.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))

    def call(self, method: str, **params: Any) -> dict:
        return self._run(self._call(method, params))

    def resize(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def navigate(self, url: str) -> None:
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise PageError(f"{url}: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited), as JSON."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise PageError(f"{expression[:200]}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Evaluate until the expression is truthy; its last value in the error past the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise PageError(f"{what}: not after {timeout:.0f}s; problems on the page: {self.problems[:5]}")
            self._run(asyncio.sleep(0.25))

    def screenshot(self, path: Path, width: int, height: int) -> None:
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False,
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        async def close() -> None:
            await self._ws.close()
            await self._session.close()
        try:
            self._run(close())
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/close/{self.id}", timeout=10).close()
        finally:
            self._loop.close()
