#!/usr/bin/env python3
"""Local OCPP 1.6J central system for `make sim`, integration tests and benchmarks.

Runs in its own process on the PyPI `ocpp` package (mobilityhouse), which checks
every message against the official OCPP 1.6 JSON schemas: a schema-invalid CALL
from the charge point gets a CALLERROR back, visible in the log. Never put the
firmware's lib/ on sys.path here: that package is also called `ocpp`.

stdout, one line per item, flushed: a human one-liner per frame by default
(`12:00:01 CP1 -> BootNotification {...}`, `<-` = sent to the charge point);
with --json: {"t","cp","dir":"rx"|"tx","msg"} per frame and {"t","event",...}
for the rest (listening, connected, disconnected, rejected, result, ack,
unmatched, ignored, ocpp-log, error). --quiet (human mode) drops frame lines.

stdin, one JSON object per line ("ref" is echoed as "id" in result/ack/error):
  {"cmd":"call","cp":"CP1","action":"Reset","payload":{"type":"Soft"},"timeout":30,"validate":true}
  {"cmd":"raw","cp":"CP1","text":"[2,\\"1\\",\\"Foo\\",{}]"}
  {"cmd":"set","boot_status":"Pending","reject_tags":["BAD"],"next_transaction_id":100}
  {"cmd":"disconnect","cp":"CP1"}
  {"cmd":"set","refuse":true}   (an outage: connections refused with HTTP 503 until false)
StartTransaction is idempotent: the same connectorId, idTag, meterStart and timestamp get the
same transactionId again (a charger resending after a power cut).
Without --json, lines starting with a letter use the human syntax (`help`).
"""
import argparse
import asyncio
import base64
import copy
import hmac
import json
import logging
import signal
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import unquote

from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult, _validate_payload
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

SUBPROTOCOL = "ocpp1.6"
HELP = """commands: remote-start CP TAG [CONNECTOR] | remote-stop CP TXID | config CP KEY VALUE
  get-config CP [KEY..] | reset CP Soft|Hard | call CP ACTION {json} | raw CP TEXT
  disconnect CP | set KEY JSON-VALUE | help      (or one JSON command object per line)"""


def utcnow():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), default=str)


def cp_id_from_path(path):
    return unquote(path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])


class Out:
    """All stdout goes through here: JSON lines (--json) or human one-liners."""

    def __init__(self, json_mode, quiet):
        self.json, self.quiet = json_mode, quiet

    def write(self, line):
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):  # reader went away; keep serving
            pass

    def event(self, event, cp=None, **kw):
        if self.json:
            self.write(compact({"t": time.time(), **({"cp": cp} if cp else {}), "event": event, **kw}))
            return
        kw = " ".join(f"{k}={v if isinstance(v, str) else compact(v)}" for k, v in kw.items() if v is not None)
        self.write(" ".join(x for x in (time.strftime("%H:%M:%S"), cp, event, kw) if x))

    def frame(self, cp, direction, text):
        try:
            msg = json.loads(text)
        except ValueError:
            msg = text
        if self.json:
            self.write(compact({"t": time.time(), "cp": cp.id, "dir": direction, "msg": msg}))
        elif not self.quiet:
            arrow = "->" if direction == "rx" else "<-"
            self.write(f"{time.strftime('%H:%M:%S')} {cp.id} {arrow} {cp.describe(msg, text)}")


class CentralCP(ChargePoint):
    """One connected charge point, seen from the central system."""

    def __init__(self, cp_id, ws, central):
        # The library reads frames with ws.recv(); its log lines carry our cp id.
        logger = logging.LoggerAdapter(logging.getLogger("ocpp"), {"cp": cp_id})
        super().__init__(cp_id, ws, logger=logger)
        self.ws, self.out, self.cfg, self.central = ws, central.out, central.cfg, central
        self.pending, self.tasks, self.actions = set(), set(), {}

    def describe(self, msg, text):  # human one-liner; remembers actions to name responses
        if isinstance(msg, list) and len(msg) >= 3 and isinstance(msg[1], str):
            if msg[0] == 2 and len(msg) == 4:
                self.actions[msg[1]] = msg[2]
                return f"{msg[2]} {compact(msg[3])}"
            action = self.actions.pop(msg[1], "?")
            if msg[0] == 3:
                return f"{action}.conf {compact(msg[2])}"
            if msg[0] == 4:
                return f"{action} CALLERROR {compact(msg[2:])}"
        return f"(raw) {text}"

    async def _send(self, message):  # every frame the library or we send passes here
        self.out.frame(self, "tx", message)
        await self.ws.send(message)

    async def route_message(self, raw):  # every received frame passes here
        if isinstance(raw, bytes):
            self.out.event("binary-frame", cp=self.id, size=len(raw))
            raw = raw.decode("utf-8", "replace")
        self.out.frame(self, "rx", raw)
        try:
            msg = json.loads(raw)
        except ValueError:
            msg = None
        if isinstance(msg, list) and len(msg) >= 2:
            uid = msg[1]
            if msg[0] in (3, 4) and not (isinstance(uid, str) and uid in self.pending):
                # The library would queue it and drop it at the next call(); say so now.
                self.out.event("unmatched", cp=self.id, unique_id=uid, note="no pending CALL; dropped")
                return
            if msg[0] == 2 and len(msg) == 4 and isinstance(msg[2], str):
                if msg[2] in self.cfg["ignore"]:
                    self.out.event("ignored", cp=self.id, action=msg[2], unique_id=uid)
                    return
                if self.cfg["fail"].get(msg[2]):
                    err = CallError(uid, self.cfg["fail"][msg[2]], "configured to fail (csms.py)", {})
                    await self._send(err.to_json())
                    return
        try:
            await super().route_message(raw)
        except ConnectionClosed:
            raise
        except Exception as e:  # never let one bad frame end the session
            self.out.event("error", cp=self.id, error=f"{type(e).__name__}: {e}")

    async def send_call(self, action, payload, timeout, validate):
        """Send our own CALL frame (payload verbatim, camelCase) through the
        library's lock and response queue; return {"response"} and/or {"error"}."""
        uid = str(uuid.uuid4())
        if validate:  # raises OCPPError: nothing is sent
            _validate_payload(Call(uid, action, copy.deepcopy(payload)), "1.6")
        async with self._call_lock:  # OCPP-J: one outstanding CALL per direction
            self.pending.add(uid)
            try:
                await self._send(compact([2, uid, action, payload]))
                resp = await self._get_specific_response(uid, timeout)
            finally:
                self.pending.discard(uid)
        if isinstance(resp, CallError):
            return {"error": {"code": resp.error_code, "description": resp.error_description,
                              "details": resp.error_details}}
        result = {"response": resp.payload}
        if validate:
            try:
                _validate_payload(CallResult(uid, copy.deepcopy(resp.payload), action), "1.6")
            except OCPPError as e:
                cause = e.details.get("cause", e.description) if isinstance(e.details, dict) else e.description
                result["error"] = {"code": e.code, "description": f"response violates schema: {cause}"}
        return result

    def tag_info(self, tag):
        status = self.cfg["tag_status"].get(tag)
        info = {"status": status or ("Invalid" if tag in self.cfg["reject_tags"] else "Accepted")}
        parent = self.cfg["parents"].get(tag)  # parentIdTag: a group of cards (1.6 spec 3.5.1)
        if parent:
            info["parentIdTag"] = parent
        return info

    @on("BootNotification")
    def on_boot_notification(self, **_):
        interval = self.cfg["boot_interval"]
        interval = self.cfg["heartbeat_interval"] if interval is None else interval
        return call_result.BootNotification(current_time=utcnow(), interval=interval,
                                            status=self.cfg["boot_status"])

    @on("Heartbeat")
    def on_heartbeat(self, **_):
        return call_result.Heartbeat(current_time=utcnow())

    @on("Authorize")
    def on_authorize(self, id_tag, **_):
        return call_result.Authorize(id_tag_info=self.tag_info(id_tag))

    @on("StartTransaction")
    def on_start_transaction(self, connector_id, id_tag, meter_start, timestamp, **_):
        # Idempotent, as a central system should be: a charger whose power failed between our
        # answer and its note of it sends the same StartTransaction again (at-least-once
        # delivery) and gets the same transactionId back, not a second transaction.
        key = (self.id, connector_id, id_tag, meter_start, timestamp)
        txid = self.central.starts.get(key)
        if txid is None:
            txid = self.central.starts[key] = self.central.next_tx
            self.central.next_tx += 1
        return call_result.StartTransaction(transaction_id=txid, id_tag_info=self.tag_info(id_tag))

    @on("StopTransaction")
    def on_stop_transaction(self, id_tag=None, **_):
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"} if id_tag else None)

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id, **_):
        known = self.cfg["vendor_ids"]
        return call_result.DataTransfer(
            status="Accepted" if known is None or vendor_id in known else "UnknownVendorId")

    @on("StatusNotification")
    def on_status_notification(self, **_):
        return call_result.StatusNotification()

    @on("MeterValues")
    def on_meter_values(self, **_):
        return call_result.MeterValues()

    @on("FirmwareStatusNotification")
    def on_firmware_status_notification(self, **_):
        return call_result.FirmwareStatusNotification()

    @on("DiagnosticsStatusNotification")
    def on_diagnostics_status_notification(self, **_):
        return call_result.DiagnosticsStatusNotification()


def parse_human(line):
    """`remote-start CP1 TAG 1` etc. -> a JSON-style command dict (None = help)."""
    words = line.split()
    verb, args = words[0].lower(), words[1:]
    if verb == "help":
        return None
    if verb == "call":
        _, cp, action, *rest = line.split(None, 3)
        return {"cmd": "call", "cp": cp, "action": action, "payload": json.loads(rest[0]) if rest else {}}
    if verb == "raw":
        _, cp, text = line.split(None, 2)
        return {"cmd": "raw", "cp": cp, "text": text}
    if verb == "disconnect":
        return {"cmd": "disconnect", "cp": args[0]}
    if verb == "set":
        return {"cmd": "set", args[0]: json.loads(" ".join(args[1:]))}
    calls = {
        "remote-start": lambda tag, conn=None: ("RemoteStartTransaction",
                                                 {"idTag": tag, **({"connectorId": int(conn)} if conn else {})}),
        "remote-stop": lambda tx: ("RemoteStopTransaction", {"transactionId": int(tx)}),
        "config": lambda key, *value: ("ChangeConfiguration", {"key": key, "value": " ".join(value)}),
        "get-config": lambda *keys: ("GetConfiguration", {"key": list(keys)} if keys else {}),
        "reset": lambda kind="Soft": ("Reset", {"type": kind.capitalize()}),
    }
    if verb not in calls or not args:
        raise ValueError(f"unknown command {line!r}; try `help`")
    action, payload = calls[verb](*args[1:])
    return {"cmd": "call", "cp": args[0], "action": action, "payload": payload}


class Central:
    def __init__(self, args, out):
        self.out, self.password, self.json = out, args.password, args.json
        self.next_tx = args.first_transaction_id  # process lifetime counter
        self.starts = {}  # (cp, connectorId, idTag, meterStart, timestamp) -> transactionId
        self.cps = {}
        tag_status = dict(kv.split("=", 1) for item in args.tag_status or [] for kv in item.split(",") if kv)
        self.cfg = {
            "boot_status": args.boot_status, "boot_interval": args.boot_interval,
            "heartbeat_interval": args.heartbeat_interval, "tag_status": tag_status,
            "reject_tags": [t for t in (args.reject_tags or "").split(",") if t],
            "vendor_ids": args.vendor_ids.split(",") if args.vendor_ids else None,
            "ignore": [],  # actions left unanswered (to test charge point timeouts)
            "fail": {},  # action -> CALLERROR code to answer with
            "parents": {},  # idTag -> parentIdTag given in every idTagInfo for that tag
            "refuse": False,  # true: every connection attempt is refused (HTTP 503), an outage
        }

    def check_auth(self, cp_id, header):
        """HTTP Basic, user = charge point id. The password may be KEY as a string
        (security whitepaper) or, if KEY is hex, its raw bytes (OCPP-J 1.6 section 6.2.2)."""
        try:
            scheme, b64 = header.split(None, 1)
            user, _, password = base64.b64decode(b64.strip(), validate=True).partition(b":")
        except (AttributeError, ValueError):
            return False
        keys = [self.password.encode()]
        try:
            keys.append(bytes.fromhex(self.password))
        except ValueError:
            pass
        return (scheme.lower() == "basic" and user == cp_id.encode()
                and any(hmac.compare_digest(password, k) for k in keys))

    def process_request(self, conn, request):
        cp_id = cp_id_from_path(request.path)
        offered = [p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]
        status = None
        if not cp_id:
            status, reason = 404, "no charge point id in the URL path"
        elif SUBPROTOCOL not in offered:
            status, reason = 400, f"subprotocol {SUBPROTOCOL} not offered (got {offered})"
        elif self.cfg["refuse"]:
            status, reason = 503, "central system unavailable (set refuse)"
        elif self.password is not None and not self.check_auth(cp_id, request.headers.get("Authorization")):
            status, reason = 401, "missing or wrong HTTP Basic credentials"
        if status is None:
            return None
        self.out.event("rejected", cp=cp_id or None, status=status, reason=reason)
        response = conn.respond(status, reason + "\n")
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
        return response

    async def handler(self, ws):
        cp = CentralCP(cp_id_from_path(ws.request.path), ws, self)
        self.cps[cp.id] = cp
        self.out.event("connected", cp=cp.id, subprotocol=ws.subprotocol, path=ws.request.path)
        try:
            await cp.start()
        except ConnectionClosed:
            pass
        except Exception as e:
            self.out.event("error", cp=cp.id, error=f"{type(e).__name__}: {e}")
        finally:
            for task in list(cp.tasks):
                task.cancel()
            if self.cps.get(cp.id) is cp:
                del self.cps[cp.id]
            self.out.event("disconnected", cp=cp.id, code=ws.close_code, reason=ws.close_reason or "")

    def find_cp(self, cp_id):
        if cp_id is None and len(self.cps) == 1:
            return next(iter(self.cps.values()))
        if cp_id not in self.cps:
            raise ValueError(f"charge point {cp_id!r} not connected (connected: {sorted(self.cps)})")
        return self.cps[cp_id]

    async def run_call(self, cp, cmd, ref):
        action = cmd.get("action")
        try:
            res = await cp.send_call(action, cmd.get("payload", {}), float(cmd.get("timeout", 30)),
                                     cmd.get("validate", True))
        except OCPPError as e:
            res = {"error": {"code": e.code, "description": f"not sent: {e.details or e.description}"}}
        except asyncio.TimeoutError:
            res = {"error": {"code": "Timeout", "description": "no response from the charge point"}}
        except (asyncio.CancelledError, ConnectionClosed):
            res = {"error": {"code": "Disconnected", "description": "connection closed before the response"}}
        self.out.event("result", cp=cp.id, id=ref, action=action, **res)

    async def command(self, line):
        line = line.strip()
        if not line:
            return
        cmd = None
        try:
            if self.json or not line[0].isalpha():
                cmd = json.loads(line)
                if not isinstance(cmd, dict):
                    raise ValueError("a command is a JSON object")
            else:
                cmd = parse_human(line)
                if cmd is None:
                    return self.out.write(HELP)
            await self.dispatch(cmd, cmd.get("ref"))
        except Exception as e:  # a bad command never stops the central system
            ref = cmd.get("ref") if isinstance(cmd, dict) else None
            self.out.event("error", id=ref, error=f"{type(e).__name__}: {e}", line=line[:200])

    async def dispatch(self, cmd, ref):
        kind = cmd.get("cmd")
        if kind == "set":
            for key, value in cmd.items():
                if key == "next_transaction_id":
                    self.next_tx = int(value)
                elif key in self.cfg:
                    self.cfg[key] = value
                elif key not in ("cmd", "ref"):
                    raise ValueError(f"unknown setting {key!r} (known: {sorted(self.cfg)})")
            return self.out.event("ack", id=ref, cmd=kind, config=self.cfg, next_transaction_id=self.next_tx)
        if kind not in ("call", "raw", "disconnect"):
            raise ValueError(f"unknown cmd {kind!r}")
        cp = self.find_cp(cmd.get("cp"))
        if kind == "call":  # answered later by a "result" event
            task = asyncio.create_task(self.run_call(cp, cmd, ref))
            cp.tasks.add(task)
            task.add_done_callback(cp.tasks.discard)
            await asyncio.sleep(0)  # let it send before the next command runs
            return
        if kind == "raw":
            await cp._send(cmd["text"])
        else:
            await cp.ws.close(1001, cmd.get("reason", "central system going away"))
        self.out.event("ack", cp=cp.id, id=ref, cmd=kind)


class LogToEvents(logging.Handler):
    """The ocpp library's warnings/errors become `ocpp-log` events on stdout."""

    def __init__(self, out):
        super().__init__(logging.WARNING)
        self.out = out

    def emit(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        self.out.event("ocpp-log", cp=getattr(record, "cp", None), level=record.levelname, text=record.getMessage()[:500],
                       error=str(exc)[:500] if exc else None)


async def amain(args):
    out = Out(args.json, args.quiet)
    central = Central(args, out)
    ocpp_logger = logging.getLogger("ocpp")
    ocpp_logger.setLevel(logging.WARNING)
    ocpp_logger.addHandler(LogToEvents(out))
    ocpp_logger.propagate = False
    loop, stop, commands = asyncio.get_running_loop(), asyncio.Event(), asyncio.Queue()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def read_stdin():  # EOF just ends this thread; the server keeps running
        for line in sys.stdin:
            try:
                loop.call_soon_threadsafe(commands.put_nowait, line)
            except RuntimeError:  # loop closed
                return

    async def consume():
        while True:
            await central.command(await commands.get())

    async with serve(central.handler, args.host, args.port, subprotocols=[SUBPROTOCOL],
                     process_request=central.process_request, close_timeout=2,
                     ping_interval=args.ping_interval or None) as server:
        port = server.sockets[0].getsockname()[1]
        out.event("listening", host=args.host, port=port, url=f"ws://{args.host}:{port}")
        threading.Thread(target=read_stdin, daemon=True).start()
        consumer = asyncio.create_task(consume())
        await stop.wait()
        consumer.cancel()
    out.event("stopped")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000, help="0 = pick a free port")
    p.add_argument("--heartbeat-interval", type=int, default=300)
    p.add_argument("--boot-status", choices=["Accepted", "Pending", "Rejected"], default="Accepted")
    p.add_argument("--boot-interval", type=int, help="BootNotification interval (default: heartbeat interval)")
    p.add_argument("--reject-tags", help="comma-separated idTags answered Invalid")
    p.add_argument("--tag-status", action="append", metavar="TAG=STATUS", help="e.g. T1=Blocked (repeatable)")
    p.add_argument("--vendor-ids", help="comma-separated DataTransfer vendorIds to accept (default: all)")
    p.add_argument("--first-transaction-id", type=int, default=1)
    p.add_argument("--password", help="require HTTP Basic auth: user = charge point id, password = KEY")
    p.add_argument("--ping-interval", type=float, default=20, help="WebSocket ping interval, 0 = off")
    p.add_argument("--json", action="store_true", help="JSON-lines output and input (for tests)")
    p.add_argument("--quiet", action="store_true", help="human mode: events only, no frames")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
