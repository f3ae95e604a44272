"""A JupyterLab server and a headless Chromium driven over the Chrome DevTools Protocol, for
tests/test_lab.py. Nothing beyond what JupyterLab already installs: ``websocket-client`` is a
dependency of ``jupyter_server``.

:class:`LabServer` starts ``jupyter lab`` on a free port, with its own config, data, runtime,
settings and workspace folders (so it reads and writes nothing of the user's), detached from
the calling process (its parent is not pytest, as for a person who typed ``make lab``).
:class:`Browser` starts Chromium with a fresh profile and drives one page. Both are context
managers that stop what they started, kernels included, even when the test fails.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    return next((shutil.which(b) for b in CHROMIUM_NAMES if shutil.which(b)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


def _pids_mentioning(marker: str) -> list[int]:
    """Processes whose command line contains ``marker`` (a temp path only our processes carry)."""
    out = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


class LabServer:
    """``jupyter lab`` serving ``root`` on 127.0.0.1 with a random token.

    ``env``: the server's (so the kernels') environment. Lab's own files go to a fresh
    ``mkdtemp`` folder (not under pytest's tmp path: a path naming pytest on the server's
    command line would tell the kernel it runs under pytest).
    """

    def __init__(self, root: Path, env: dict[str, str], settings: dict[str, dict] | None = None,
                 startup_s: float = 90.0):
        self.root, self.env, self.settings, self.startup_s = Path(root), dict(env), settings or {}, startup_s
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.home = Path(tempfile.mkdtemp(prefix="clickvision-lab-"))
        self.log_path = self.home / "lab.log"
        self.pid: int | None = None
        self.argv: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, method: str = "GET", timeout: float = 5.0):
        req = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def __enter__(self) -> LabServer:
        dirs = {k: self.home / v for k, v in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                                               ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                                               ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                                               ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"))}
        for d in dirs.values():
            d.mkdir()
        for plugin, values in self.settings.items():  # "@jupyterlab/x-extension:plugin" -> settings file
            pkg, name = plugin.split(":")
            f = dirs["JUPYTERLAB_SETTINGS_DIR"] / pkg / f"{name}.jupyterlab-settings"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(values))
        env = {**self.env, **{k: str(v) for k, v in dirs.items()}, "JUPYTER_PLATFORM_DIRS": "1"}
        self.argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                     f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                     f"--IdentityProvider.token={self.token}", "--LabApp.news_url=None",
                     "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI images often run as root
            self.argv.append("--allow-root")
        # Started by a short-lived launcher in a new session: the server's parent is then init
        # (or the nearest subreaper), not this process, as for a person who started it.
        launcher = ("import subprocess, sys; log = open(sys.argv[1], 'ab');"
                    "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=log,"
                    " start_new_session=True); print(p.pid)")
        out = subprocess.run([sys.executable, "-c", launcher, str(self.log_path), *self.argv], cwd=self.root,
                             env=env, capture_output=True, text=True, timeout=60, check=True)
        self.pid = int(out.stdout.strip())
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if not _alive(self.pid):
                raise RuntimeError(f"jupyter lab exited during start-up:\n{self.log_tail()}")
            try:
                self.api("status", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"jupyter lab did not answer within {self.startup_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.pid is None:
            return
        try:  # kernels first (each in its own session), then the server
            for k in self.api("kernels", timeout=3):
                try:
                    self.api(f"kernels/{k['id']}", method="DELETE", timeout=10)
                except OSError:
                    pass
        except (OSError, ValueError):
            pass
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pid, sig)
            except OSError:
                pass
            deadline = time.monotonic() + wait
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not _alive(self.pid):
                break
        for pid in _pids_mentioning(str(self.home)):  # a kernel left behind (its connection file is ours)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.pid = None
        shutil.rmtree(self.home, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        self.stop()


class CDPError(RuntimeError):
    pass


class Browser:
    """Headless Chromium with a fresh profile, one page driven over the DevTools Protocol."""

    def __init__(self, executable: str, width: int = 1400, height: int = 1000, startup_s: float = 60.0):
        self.executable, self.width, self.height, self.startup_s = executable, width, height, startup_s
        self.profile = Path(tempfile.mkdtemp(prefix="clickvision-chromium-"))
        self.proc: subprocess.Popen | None = None
        self.ws = None
        self._id = 0
        self.errors: list[str] = []  # uncaught page exceptions, for failure messages

    def __enter__(self) -> Browser:
        import websocket  # websocket-client, a dependency of jupyter_server

        self.proc = subprocess.Popen(
            [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.profile / "stderr.log", "wb"),
            start_new_session=True)
        try:
            port = self._devtools_port()
            deadline = time.monotonic() + self.startup_s
            while True:
                pages = [t for t in json.loads(_get(f"http://127.0.0.1:{port}/json/list")) if t.get("type") == "page"]
                if pages or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if not pages:
                raise RuntimeError("Chromium opened no page")
            self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
            self.send("Runtime.enable")
            self.send("Page.enable")
            self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise
        return self

    def _devtools_port(self) -> int:
        f = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Chromium exited ({self.proc.returncode}): "
                                   f"{(self.profile / 'stderr.log').read_text(errors='replace')[-2000:]}")
            if f.exists() and (lines := f.read_text().split()):
                return int(lines[0])
            time.sleep(0.1)
        raise TimeoutError("Chromium did not open its DevTools port")

    def send(self, method: str, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == "Runtime.exceptionThrown":
                d = msg["params"]["exceptionDetails"]
                self.errors.append(d.get("exception", {}).get("description") or d.get("text", ""))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def js(self, expression: str):
        """The value of a JavaScript expression in the page (awaited when a promise)."""
        r = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CDPError(f"{expression[:80]}...: {d.get('exception', {}).get('description') or d.get('text')}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str, poll: float = 0.25):
        """Poll ``expression`` until it is truthy; its value. TimeoutError naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not seen within {timeout:.0f} s")
            time.sleep(poll)

    def click_at(self, x: float, y: float) -> None:
        """A person's click: the pointer moves there, presses and releases the left button."""
        self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        self.send("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", clickCount=1)
        self.send("Input.dispatchMouseEvent", type="mouseReleased", x=x, y=y, button="left", clickCount=1)

    def click(self, selector_js: str, what: str, timeout: float = 10.0) -> None:
        """Click the centre of the element ``selector_js`` (a JS expression giving an element)."""
        box = self.wait_for(f"(() => {{ const e = {selector_js}; if (!e) return null; e.scrollIntoView"
                            "({block: 'nearest'}); const r = e.getBoundingClientRect();"
                            " return r.width > 0 ? [r.x + r.width / 2, r.y + r.height / 2] : null; })()",
                            timeout, what)
        self.click_at(*box)

    def type_text(self, text: str) -> None:
        self.send("Input.insertText", text=text)

    def press(self, key: str, code: str | None = None, key_code: int | None = None, modifiers: int = 0) -> None:
        opts = {"key": key, "code": code or key, "modifiers": modifiers}
        if key_code:
            opts["windowsVirtualKeyCode"] = key_code
        self.send("Input.dispatchKeyEvent", type="rawKeyDown", **opts)
        self.send("Input.dispatchKeyEvent", type="keyUp", **opts)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):  # closing anyway
                self.ws.close()
            self.ws = None
        if self.proc is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except OSError:
                    pass
                try:
                    self.proc.wait(timeout=5)
                    break
                except subprocess.TimeoutExpired:
                    continue
            self.proc = None
        shutil.rmtree(self.profile, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        self.close()
