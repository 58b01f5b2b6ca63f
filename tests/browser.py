"""Test helper: a headless Chromium driven over the DevTools protocol on a
pipe, with nothing beyond the standard library.

``--remote-debugging-pipe`` makes the browser read JSON commands, each
ended by a NUL byte, from its fd 3 and write replies and events, likewise,
to its fd 4. A page is opened as a target of its own (flattened session),
with the Runtime, Log, Network and Page domains on, so that every console
error, uncaught exception and request the page makes is seen. Every wait is
bounded; the browser is killed (its whole process group) when done.

Also: finding a Chromium, installing Debian's where that can be done (root
and apt-get), and decoding the PNG of a screenshot to see it is not blank.
Run as a script, it takes a screenshot of a page (``docs/report.png``).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

from debian import install

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(Exception):
    pass


def install_browser(timeout: float = 600) -> str:
    """The browser's path: one on PATH, or Debian's chromium installed (as root, with apt-get).
    InstallError where this machine gives no way to, or the install gave no browser."""
    return install("chromium", NAMES, timeout)


# Puts the pipes at fds 3 and 4, then becomes the browser (a shell cannot
# redirect from a descriptor above 9, and pytest's often are).
_AT_3_AND_4 = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); " \
              "os.execvp(sys.argv[3], sys.argv[3:])"


def _above(fd: int, lowest: int) -> int:
    """``fd`` moved to a descriptor number at least ``lowest``."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    os.close(fd)
    return moved


class Browser:
    """A headless Chromium; a context manager that kills it on leaving."""

    def __init__(self, exe: str, width: int = 1400, height: int = 1000, timeout: float = 30):
        self.width, self.height, self.timeout = width, height, timeout
        self.profile = tempfile.mkdtemp(prefix="flow-chromium-")
        self.log = open(os.path.join(self.profile, "stderr.txt"), "w+b")  # noqa: SIM115 - closed in close()
        to_browser, self._in = os.pipe()
        self._out, from_browser = os.pipe()
        # Above 4, so that putting one at 3 cannot close the other before it is put at 4.
        to_browser, from_browser = (_above(fd, 10) for fd in (to_browser, from_browser))
        args = [exe, "--headless", "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}", "--no-first-run", "--no-default-browser-check",
                "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--disable-component-update", "--mute-audio",
                "--hide-scrollbars", *(["--no-sandbox"] if os.geteuid() == 0 else []), "about:blank"]
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _AT_3_AND_4, str(to_browser),
                                      str(from_browser), *args],
                                     pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        os.close(to_browser)
        os.close(from_browser)
        self.messages: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._out, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self.messages.put(None)  # the browser went away
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\0")
            for raw in complete:
                self.messages.put(json.loads(raw))

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        """Send a command and wait for its reply (events meanwhile are kept)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._in, json.dumps(message).encode() + b"\0")
        reply = self._wait(lambda m: m.get("id") == self._next_id, timeout, f"the reply to {method}")
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, session: str | None = None, timeout: float | None = None) -> dict:
        """The first event ``method`` (of ``session``) seen, waiting for it if need be."""
        def matches(m: dict) -> bool:
            return m.get("method") == method and (session is None or m.get("sessionId") == session)

        seen = next((e for e in self.events if matches(e)), None)
        return seen or self._wait(matches, timeout, f"the event {method}")

    def _wait(self, matches, timeout: float | None, what: str) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            try:
                message = self.messages.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise BrowserError(f"timed out waiting for {what}; {self.stderr_tail()}") from None
            if message is None:
                raise BrowserError(f"the browser ended while waiting for {what}; {self.stderr_tail()}")
            if "id" not in message:
                self.events.append(message)
            if matches(message):
                return message

    def stderr_tail(self) -> str:
        self.log.flush()
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return "its stderr ended with: " + " / ".join(lines[-5:]) if lines else "it wrote nothing on stderr"

    def open(self, url: str) -> Page:
        """A new page showing ``url``, once its load event has fired."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False}, session)
        start = len(self.events)
        self.send("Page.navigate", {"url": url}, session)
        page = Page(self, session, start)
        page.wait("Page.loadEventFired")
        return page

    def close(self) -> None:
        """Ask the browser to close, then kill what is left of it."""
        try:
            if self.proc.poll() is None:
                self._next_id += 1
                os.write(self._in, json.dumps({"id": self._next_id, "method": "Browser.close"}).encode() + b"\0")
                self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for fd in (self._in, self._out):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, session: str, first_event: int):
        self.browser, self.session, self.first_event = browser, session, first_event

    def wait(self, method: str, timeout: float | None = None) -> dict:
        return self.browser.wait_event(method, self.session, timeout)

    def _events(self, method: str) -> list[dict]:
        return [e["params"] for e in self.browser.events[self.first_event:]
                if e.get("method") == method and e.get("sessionId") == self.session]

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page."""
        reply = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                       "awaitPromise": True}, self.session)
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and errors the browser logged for the page."""
        self.evaluate("0")  # (a round trip: events sent before it are in)
        out = [" ".join(str(a.get("value", a.get("description", ""))) for a in e.get("args", []))
               for e in self._events("Runtime.consoleAPICalled") if e.get("type") in ("error", "assert")]
        out += [e["exceptionDetails"].get("text", "") + " " + str(e["exceptionDetails"].get("exception", {}))
                for e in self._events("Runtime.exceptionThrown")]
        out += [e["entry"].get("text", "") for e in self._events("Log.entryAdded") if e["entry"].get("level") == "error"]
        return out

    def requests(self) -> list[str]:
        """The URL of every request the page made."""
        self.evaluate("0")
        return [e["request"]["url"] for e in self._events("Network.requestWillBeSent")]

    def screenshot(self, scale: float = 1.0) -> bytes:
        """A PNG of the viewport, scaled by ``scale``."""
        clip = {"x": 0, "y": 0, "width": self.browser.width, "height": self.browser.height, "scale": scale}
        reply = self.browser.send("Page.captureScreenshot", {"format": "png", "clip": clip}, self.session)
        return base64.b64decode(reply["data"])


def png_pixels(data: bytes) -> tuple[int, int, list[bytes], int]:
    """The width, height, rows and bytes per pixel of an 8-bit RGB or RGBA
    PNG without interlacing (as Chromium writes them)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    if header is None:
        raise ValueError("a PNG without its header")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"a PNG this decoder does not read (depth {depth}, colour type {colour})")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows, previous = [], bytearray(stride)
    for r in range(height):
        kind, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        _unfilter(kind, line, previous, bpp)
        rows.append(bytes(line))
        previous = line
    return width, height, rows, bpp


def _unfilter(kind: int, line: bytearray, up: bytearray, bpp: int) -> None:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up[i]) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up[i]) // 2) & 0xFF
        elif kind == 4:
            corner = up[i - bpp] if i >= bpp else 0
            p = left + up[i] - corner
            pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner)) & 0xFF


def ink(data: bytes) -> tuple[int, float]:
    """How many colours a PNG has, and the share of its pixels that are not
    its most common colour (its background)."""
    width, height, rows, bpp = png_pixels(data)
    counts: dict[bytes, int] = {}
    for row in rows:
        for i in range(0, width * bpp, bpp):
            pixel = row[i:i + 3]
            counts[pixel] = counts.get(pixel, 0) + 1
    return len(counts), 1 - max(counts.values()) / (width * height)


def main(argv: list[str]) -> int:
    """``python tests/browser.py PAGE.html OUT.png [WIDTH HEIGHT]``: a
    screenshot of a page (how docs/report.png is made)."""
    if len(argv) not in (2, 4):
        print(main.__doc__, file=sys.stderr)
        return 2
    width, height = (int(argv[2]), int(argv[3])) if len(argv) == 4 else (1400, 1000)
    exe = install_browser()
    with Browser(exe, width, height) as browser:
        page = browser.open(Path(argv[0]).resolve().as_uri())
        Path(argv[1]).write_bytes(page.screenshot())
        for error in page.errors():
            print(f"console error: {error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
