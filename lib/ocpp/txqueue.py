# The queue of transaction-related messages (1.6 spec §3.7, §4.8, §4.10): StartTransaction,
# transaction MeterValues and StopTransaction go out strictly in order, each only after the one
# ahead of it was answered; other messages (Authorize, StatusNotification, Heartbeat) may pass
# them. A message the central system fails to process (a CALLERROR) is retried after
# TransactionMessageRetryInterval x attempts so far, TransactionMessageAttempts times in all, then
# discarded with a log line. A timeout or a lost link never counts as an attempt: the message
# waits for the link to come back.
from .compat import ticks_add, ticks_diff, ticks_ms
from .rpc import CallError, Offline, Timeout


class Item:
    def __init__(self, action, payload, tx):
        self.action = action
        self.payload = payload
        self.tx = tx
        self.attempts = 0
        self.result = None  # the CALLRESULT payload, or an error code string
        self.waiters = None  # asyncio.Event, made only when an API call waits for this item


class TxQueue:
    def __init__(self, cp):
        self.cp = cp
        self.items = []
        self._retry_at = None

    def __len__(self):
        return len(self.items)

    def put(self, action, payload, tx):
        item = Item(action, payload, tx)
        self.items.append(item)
        self.cp.wake()
        return item

    def retry_in(self):
        if not self.items:
            return 3600000
        if self._retry_at is None:
            return 0
        return max(ticks_diff(self._retry_at, ticks_ms()), 0)

    async def send_next(self):
        """Send the head of the queue if it is due; returns True when something was sent."""
        if not self.items or self.retry_in() > 0:
            return False
        item = self.items[0]
        tx = item.tx
        payload = item.payload
        if item.action != "StartTransaction":
            if tx.id is None:
                # Its StartTransaction was discarded: the central system cannot place this
                # message. Keep the data in the log rather than send a made-up transactionId.
                self.cp.log("txqueue: %s for a transaction without id dropped" % item.action)
                self._finish(item, "NoTransaction")
                return True
            payload["transactionId"] = tx.id
        try:
            r = await self.cp.call(item.action, payload)
        except (Offline, Timeout):
            raise
        except CallError as e:
            item.attempts += 1
            limit = self.cp.config.get("TransactionMessageAttempts")
            if item.attempts >= max(limit, 1):
                self.cp.log(
                    "txqueue: %s discarded after %d attempts (%s)"
                    % (item.action, item.attempts, e.code)
                )
                self._finish(item, e.code)
            else:
                wait = self.cp.config.get("TransactionMessageRetryInterval") * item.attempts
                self._retry_at = ticks_add(ticks_ms(), wait * 1000)
            return True
        if item.action == "StartTransaction":
            tx.id = r.get("transactionId")
        self._finish(item, r)
        return True

    def _finish(self, item, result):
        self.items.pop(0)
        if item.action == "StartTransaction":
            item.tx.start_done = True
        self._retry_at = None
        item.result = result
        if item.waiters is not None:
            item.waiters.set()
        self.cp.on_tx_result(item)
