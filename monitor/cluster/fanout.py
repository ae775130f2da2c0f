"""Alerts and events of every room reach ``/v1/alerts`` subscribers on every gateway.

:class:`ClusterHub` is the server's :class:`~monitor.server.hub.AlertHub` plus the broker:
what a gateway publishes goes to its own subscribers and to ``monitor.events``; what other
gateways publish there comes back in and goes to this gateway's subscribers. An alert seen
before (same ``alert_id``: a room taken over re-sends what its dead gateway may already have
sent) is not delivered twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from typing import Any

from nats.aio.msg import Msg

from monitor.cluster.broker import EVENTS_SUBJECT, Broker

log = logging.getLogger(__name__)

SEEN_ALERT_IDS = 65536
"""Alert ids remembered to drop repeats (a few hours of a busy cluster's alerts)."""


class Fanout:
    """The broker side of a gateway's hub (attached once the broker is connected)."""

    def __init__(self, broker: Broker, gateway_id: str, deliver_alert: Any, deliver_event: Any) -> None:
        self.broker = broker
        self.gateway_id = gateway_id
        self._deliver_alert = deliver_alert
        self._deliver_event = deliver_event
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def start(self) -> None:
        await self.broker.subscribe(EVENTS_SUBJECT, self._on_message)

    def first_time(self, alert_id: str) -> bool:
        """True the first time ``alert_id`` is seen by this gateway."""
        if alert_id in self._seen:
            return False
        self._seen[alert_id] = None
        if len(self._seen) > SEEN_ALERT_IDS:
            self._seen.popitem(last=False)
        return True

    def send(self, kind: str, body: dict[str, Any]) -> None:
        """Publish to the other gateways (fire and forget; the broker keeps it for late starters)."""
        data = json.dumps({"origin": self.gateway_id, "kind": kind, "body": body}, ensure_ascii=False).encode()
        task = asyncio.get_running_loop().create_task(self.broker.publish(EVENTS_SUBJECT, data))
        task.add_done_callback(_log_failure)

    async def _on_message(self, msg: Msg) -> None:
        try:
            envelope = json.loads(msg.data)
            if envelope["origin"] == self.gateway_id:
                return
            body = envelope["body"]
            if envelope["kind"] == "alert":
                if self.first_time(str(body["alert_id"])):
                    self._deliver_alert(body)
            else:
                self._deliver_event(body)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("dropping a malformed fan-out event: %s", exc)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("fan-out publish failed: %s", task.exception())
