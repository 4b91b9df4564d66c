"""Process helpers for host integration tests: the local central system
(tools/csms.py, run in its own process with the PyPI `ocpp`) and the firmware
simulator (tools/sim). Stdlib only; never imports the PyPI `ocpp` package
(lib/ is first on sys.path in pytest and is also called `ocpp`).

    with Csms() as csms, Sim(csms.url, "CP1") as sim:
        boot = csms.wait_rx("BootNotification", cp="CP1")
        sim.wait_status(lambda s: s["connectors"][0]["status"] == "Available")
        assert csms.call("CP1", "Reset", {"type": "Soft"})["status"] == "Accepted"
"""
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CSMS_PY = REPO / "tools" / "csms.py"
SIM = REPO / "tools" / "sim"
_venv_python = REPO / ".venv" / "bin" / "python"
PYTHON = str(_venv_python) if _venv_python.exists() else sys.executable


def _tail(path, n=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class CallFailed(AssertionError):
    """Csms.call() got a CALLERROR, a timeout, or a schema-invalid response.
    `.event` is the csms result event (keys: action, error, maybe response)."""

    def __init__(self, event):
        super().__init__(f"{event.get('action')} failed: {event.get('error')}")
        self.event = event


class Csms:
    """tools/csms.py --json --port 0 [args] in a subprocess.

    `lines` holds every stdout line (dicts) across restarts; frames are
    {"t","cp","dir":"rx"|"tx","msg"}, others {"t","event",...}. Its stderr goes
    to `stderr_path` under `workdir` (e.g. pytest's tmp_path) or the system tmp."""

    def __init__(self, *args, port=0, startup_timeout=10, workdir=None):
        self.args, self.port = [str(a) for a in args], port
        self.lines, self._cond = [], threading.Condition()
        self._cursors, self._refs = {}, itertools.count(1)
        self.tmpdir = tempfile.mkdtemp(prefix="csms-", dir=workdir)
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        self.proc = None
        self.start(startup_timeout)

    # -- process control ---------------------------------------------------
    def start(self, timeout=10):
        since = len(self.lines)
        cmd = [PYTHON, str(CSMS_PY), "--json", "--port", str(self.port), *self.args]
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        self.port = self.wait_for(lambda l: l.get("event") == "listening", timeout, since)["port"]

    def _read(self, proc):
        for raw in proc.stdout:
            try:
                line = json.loads(raw)
                if not isinstance(line, dict):
                    raise ValueError
            except ValueError:
                line = {"event": "stdout", "text": raw.rstrip("\n")}
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def stop(self, timeout=5):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reader.join(2)
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def kill(self):
        """SIGKILL: connections drop without a close handshake."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.stop()

    def restart(self, kill=False, timeout=10):
        """Stop (SIGTERM, or SIGKILL with kill=True) and start on the SAME port."""
        self.kill() if kill else self.stop()
        self.start(timeout)

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stderr_text(self):
        return Path(self.stderr_path).read_text(errors="replace")

    # -- reading the log ---------------------------------------------------
    def mark(self):
        """Index to pass as `since` to only look at lines from now on."""
        with self._cond:
            return len(self.lines)

    def tail(self, n=20):
        with self._cond:
            return "\n".join(json.dumps(l) for l in self.lines[-n:])

    def wait_for(self, pred, timeout=10, since=0):
        """First line (dict) at index >= since with pred(line) true."""
        return self._wait_index(pred, timeout, since)[1]

    def _wait_index(self, pred, timeout, since):
        deadline = time.monotonic() + timeout
        with self._cond:
            i = since
            while True:
                for i in range(i, len(self.lines)):
                    if pred(self.lines[i]):
                        return i, self.lines[i]
                i = len(self.lines)
                left = deadline - time.monotonic()
                dead = self.proc is None or self.proc.poll() is not None
                if left <= 0 or (dead and not self._reader.is_alive()):
                    raise AssertionError(
                        f"csms: no matching line within {timeout}s"
                        f"{' (process exited)' if dead else ''}; last lines:\n{self.tail()}"
                        f"\nstderr:\n{_tail(self.stderr_path, 20)}")
                self._cond.wait(min(left, 0.5))

    @staticmethod
    def _is_call(line, action=None, cp=None):
        m = line.get("msg")
        return (line.get("dir") == "rx" and isinstance(m, list) and len(m) == 4 and m[0] == 2
                and (action is None or m[2] == action) and (cp is None or line.get("cp") == cp))

    def wait_rx(self, action, cp=None, timeout=10):
        """Next CALL frame [2, id, action, payload] of `action` from a charge
        point; successive calls return successive messages (cursor per action/cp)."""
        key = (action, cp)
        i, line = self._wait_index(lambda l: self._is_call(l, action, cp), timeout, self._cursors.get(key, 0))
        self._cursors[key] = i + 1
        return line["msg"]

    def rx_calls(self, action=None, cp=None):
        with self._cond:
            return [l["msg"] for l in self.lines if self._is_call(l, action, cp)]

    def events(self, name=None, since=0):
        with self._cond:
            return [l for l in self.lines[since:] if "event" in l and (name is None or l["event"] == name)]

    # -- commands ------------------------------------------------------------
    def send(self, cmd):
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"csms is not running; last lines:\n{self.tail()}")
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def _command(self, cmd, timeout, done=("ack",)):
        ref = f"h{next(self._refs)}"
        since = self.mark()
        self.send({**cmd, "ref": ref})
        line = self.wait_for(lambda l: l.get("id") == ref and l.get("event") in (*done, "error"),
                             timeout, since)
        if line["event"] == "error":
            raise AssertionError(f"csms rejected {cmd}: {line.get('error')}")
        return line

    def call_event(self, cp, action, payload=None, timeout=10, validate=True):
        """Send a CALL to `cp`; return the whole result event
        ({"action", "response"} and/or {"error": {"code", "description"}})."""
        cmd = {"cmd": "call", "cp": cp, "action": action, "payload": payload or {},
               "timeout": timeout, "validate": validate}
        return self._command(cmd, timeout + 5, done=("result",))

    def call(self, cp, action, payload=None, timeout=10):
        """Send a CALL and return the response payload; CallFailed on CALLERROR,
        timeout, disconnect or a schema-invalid response."""
        event = self.call_event(cp, action, payload, timeout)
        if "error" in event:
            raise CallFailed(event)
        return event["response"]

    def raw(self, cp, text):
        """Send `text` as-is as one text frame (returns once written)."""
        self._command({"cmd": "raw", "cp": cp, "text": text}, 5)

    def set(self, **settings):
        """Change behaviour at runtime: boot_status, boot_interval, heartbeat_interval,
        reject_tags, tag_status, vendor_ids, ignore, fail, next_transaction_id, refuse (True:
        connection attempts are refused with HTTP 503, an outage; open links stay: disconnect)."""
        return self._command({"cmd": "set", **settings}, 5)["config"]

    def disconnect(self, cp):
        """Close that charge point's WebSocket with code 1001."""
        self._command({"cmd": "disconnect", "cp": cp}, 10)


class Sim:
    """tools/sim (our firmware on MicroPython) in a subprocess. stdout carries
    only status JSON lines; stderr goes to `log_path`. Unless `state` is given,
    a fresh state dir is used (`state_dir`; pass it to a new Sim to reboot).
    Temp files go under `workdir` (e.g. pytest's tmp_path) or the system tmp."""

    def __init__(self, csms_url, id="CP1", connectors=None, state=None, heap=None, password=None,
                 extra_args=(), env=None, workdir=None):
        self.id = id
        self.tmpdir = tempfile.mkdtemp(prefix=f"sim-{id}-", dir=workdir)
        self.state_dir = str(state) if state is not None else os.path.join(self.tmpdir, "state")
        os.makedirs(self.state_dir, exist_ok=True)
        self.log_path = os.path.join(self.tmpdir, "stderr.log")
        cmd = [str(SIM), "--csms", csms_url, "--id", id, "--state", self.state_dir]
        for opt, val in (("--connectors", connectors), ("--heap", heap), ("--password", password)):
            if val is not None:
                cmd += [opt, str(val)]
        cmd += [str(a) for a in extra_args]
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, text=True, bufsize=1,
                                         env={**os.environ, **(env or {})})
        self.other_stdout, self.last_status = [], None
        self._q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self._q.put(raw)
        self._q.put(None)  # EOF

    @property
    def alive(self):
        return self.proc.poll() is None

    def send(self, line):
        try:
            self.proc.stdin.write(line.rstrip("\n") + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise AssertionError(f"sim {self.id} is not running (rc={self.proc.poll()})\n"
                                 f"stderr tail:\n{_tail(self.log_path)}") from None

    def stderr_text(self):
        return Path(self.log_path).read_text(errors="replace")

    def status(self, timeout=5):
        """Send `status`, return the next JSON object with a "connectors" key."""
        while not self._q.empty():  # drop answers to earlier, timed-out requests
            raw = self._q.get_nowait()
            if raw is None:  # keep the EOF marker
                self._q.put(None)
                break
            self.other_stdout.append(raw.rstrip("\n"))
        self.send("status")
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"sim {self.id}: no status within {timeout}s\n"
                                     f"stderr tail:\n{_tail(self.log_path)}") from None
            if raw is None:
                self._q.put(None)
                raise AssertionError(f"sim {self.id} exited (rc={self.proc.wait()})\n"
                                     f"stderr tail:\n{_tail(self.log_path)}")
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and "connectors" in obj:
                self.last_status = obj
                return obj
            self.other_stdout.append(raw.rstrip("\n"))

    def wait_status(self, pred, timeout=15, interval=0.1):
        """Poll status until pred(status) is true; return that status."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                st = self.status(timeout=max(0.5, min(5, left)))
                if pred(st):
                    return st
            except AssertionError:
                if not self.alive or left <= 0:
                    raise
            if time.monotonic() >= deadline:
                raise AssertionError(f"sim {self.id}: condition not met within {timeout}s\n"
                                     f"last status: {json.dumps(self.last_status)}\n"
                                     f"stderr tail:\n{_tail(self.log_path)}")
            time.sleep(interval)

    def kill(self):
        """SIGKILL (power loss)."""
        if self.alive:
            self.proc.kill()
        return self.proc.wait()

    def quit(self, timeout=5):
        """Send `quit`; SIGKILL if it has not exited within `timeout`. Returns rc."""
        if self.alive:
            try:
                self.send("quit")
                return self.proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                pass
        return self.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()
