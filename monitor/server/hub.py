"""Alert routing to ``/v1/alerts`` subscribers, with a bounded replay buffer.

:meth:`AlertHub.publish` runs on the event loop and never waits: each matching
subscriber gets the alert in its own bounded queue, drained by that subscriber's own
task. A subscriber whose queue is full (it reads slower than alerts come, or is dead)
is cut off with close code 1013 and a reason, so it can reconnect with
``since=<last alert_id>`` and miss nothing still held; it never slows a room.

Subscribers that ask for them (``include=rooms,decisions,claims``, the moderator console)
also get room open/close events, moderators' decisions and claims (:meth:`AlertHub.publish_event`).
Decisions on held alerts are held with them and replayed right after their alert.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from monitor.server.auth import Grant
from monitor.server.metrics import ServerMetrics
from monitor.taxonomy import CATEGORIES, Severity

log = logging.getLogger(__name__)

END_OF_ALERTS: dict[str, Any] = {"type": "end"}
"""Queued last by :meth:`AlertHub.end_all`; the subscriber's socket closes with 1001 after it."""

EVENT_KINDS = {"rooms": "room", "decisions": "decision", "claims": "claim", "reports": "report"}
"""``include=`` values of ``/v1/alerts`` -> the ``type`` of the extra messages they ask for."""

EVENT_KIND_OF_TYPE = {"claim_released": "claim"}
"""Message types that come with another type's ``include=`` (``claims`` brings both claim messages)."""


@dataclass(frozen=True)
class AlertFilter:
    """What one subscriber asked for: ``None`` fields match everything.

    ``rooms``/``categories`` come from repeated or comma-separated ``room=``/``category=``
    query parameters; ``min_severity`` from ``min_severity=``.
    """

    grant: Grant
    rooms: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    min_severity: Severity = Severity.INFO

    def matches(self, alert: dict[str, Any]) -> bool:
        room = alert.get("room_id")
        if not self.grant.may_see(room):
            return False
        if self.rooms is not None and room not in self.rooms:
            return False
        if self.categories is not None and alert["category"] not in self.categories:
            return False
        return bool(Severity(alert["severity"]).rank >= self.min_severity.rank)

    def matches_event(self, event: dict[str, Any]) -> bool:
        """Whether a room event (room scope only), a decision (like its alert) or a viewer report
        (room scope; ``category=`` when the report names one) is for this subscriber."""
        if event["type"] == "decision":
            return self.matches(event)
        room = event.get("room_id")
        named = event.get("category") if event["type"] == "report" else None
        if named is not None and self.categories is not None and named not in self.categories:
            return False
        return self.grant.may_see(room) and (self.rooms is None or room in self.rooms)


@dataclass(frozen=True)
class Subscription:
    """A ``/v1/alerts`` query, parsed once per connection: the filter, ``since`` and ``include``."""

    filter: AlertFilter
    since: str | None = None
    events: frozenset[str] = frozenset()


def parse_alert_filter(grant: Grant, query: str) -> tuple[AlertFilter, str | None]:
    """The subscriber's filter and ``since`` from a ``/v1/alerts`` query string; ValueError if invalid."""
    params = parse_qs(query)

    def listed(name: str) -> frozenset[str] | None:
        values = [v for raw in params.get(name, []) for v in raw.split(",") if v]
        return frozenset(values) if values else None

    categories = listed("category")
    unknown = sorted((categories or frozenset()) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown category {unknown[0]!r}; categories are {list(CATEGORIES)}")
    severity_text = params.get("min_severity", ["info"])[-1]
    try:
        min_severity = Severity(severity_text)
    except ValueError:
        raise ValueError(
            f"min_severity={severity_text!r} is not one of {[s.value for s in Severity]}"
        ) from None
    since = params.get("since", [None])[-1]
    return AlertFilter(grant, rooms=listed("room"), categories=categories, min_severity=min_severity), since


def parse_included_events(query: str) -> frozenset[str]:
    """The extra message types a ``/v1/alerts`` query asks for with ``include=rooms,decisions``."""
    asked = [v for raw in parse_qs(query).get("include", []) for v in raw.split(",") if v]
    unknown = sorted(set(asked) - set(EVENT_KINDS))
    if unknown:
        raise ValueError(f"include={unknown[0]!r} is not one of {sorted(EVENT_KINDS)}")
    return frozenset(EVENT_KINDS[v] for v in asked)


def parse_subscription(grant: Grant, query: str) -> Subscription:
    """The whole ``/v1/alerts`` query (filter, ``since``, ``include``); ValueError naming the bad parameter."""
    alert_filter, since = parse_alert_filter(grant, query)
    return Subscription(alert_filter, since, parse_included_events(query))


@dataclass(eq=False)
class Subscriber:
    """One ``/v1/alerts`` connection's queue; ``cut_reason`` is set when the hub gives up on it."""

    filter: AlertFilter
    max_queue_alerts: int
    events: frozenset[str] = frozenset()  # extra message types wanted: "room", "decision"
    queue: asyncio.Queue[dict[str, Any]] = field(init=False)
    cut: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    replay: deque[dict[str, Any]] = field(default_factory=deque)
    cut_reason: str | None = None
    replayed_ids: set[str] = field(default_factory=set)  # replayed from the archive: not sent again live

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.max_queue_alerts)

    async def next_alert(self) -> dict[str, Any]:
        """The next alert to send: replayed ones first, then live ones as they come."""
        if self.replay:
            return self.replay.popleft()
        return await self.queue.get()

    def offer(self, alert: dict[str, Any]) -> bool:
        """Queue ``alert`` if there is room; False (and cut off) if the queue is full."""
        if self.cut.is_set():
            return False
        if self.replayed_ids and alert.get("alert_id") in self.replayed_ids and "type" not in alert:
            self.replayed_ids.discard(alert["alert_id"])
            return True  # already sent from the archive's replay
        try:
            self.queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.cut_reason = (
                f"subscriber too slow: {self.max_queue_alerts} alerts unsent; reconnect with since="
            )
            self.cut.set()
            return False
        return True


class AlertHub:
    """Fan-out of every sent alert to matching subscribers, plus ``since=`` replay."""

    def __init__(
        self, metrics: ServerMetrics, *, replay_buffer_alerts: int, subscriber_queue_alerts: int
    ) -> None:
        self._metrics = metrics
        self._replay: deque[dict[str, Any]] = deque(maxlen=replay_buffer_alerts)
        self._decisions: dict[str, list[dict[str, Any]]] = {}  # alert_id -> decisions, for held alerts
        self._subscribers: set[Subscriber] = set()
        self._subscriber_queue_alerts = subscriber_queue_alerts
        self._observers: list[Callable[[dict[str, Any]], None]] = []

    def observe(self, observer: Callable[[dict[str, Any]], None]) -> None:
        """Call ``observer`` (on the event loop, without blocking) with every published message:
        alerts as ``{"type": "alert", ...}``, events as published. An observer's error is logged."""
        self._observers.append(observer)

    def _tell_observers(self, message: dict[str, Any]) -> None:
        for observer in self._observers:
            try:
                observer(message)
            except Exception:
                log.exception("a hub observer failed on a %s message; publishing goes on", message.get("type"))

    def holds_since(self, since: str) -> bool:
        """Whether memory holds every alert after ``since`` (else the archive must replay them):
        true when ``since`` is at or after the oldest held alert and nothing held was evicted before it."""
        return bool(self._replay) and self._replay[0]["alert_id"] <= since

    def subscribe(
        self,
        alert_filter: AlertFilter,
        *,
        since: str | None = None,
        events: frozenset[str] = frozenset(),
        archived: Iterable[dict[str, Any]] = (),
    ) -> Subscriber:
        """A new subscriber, its queue preloaded with held alerts after ``since`` (alert ids sort by time).

        ``archived``: alerts after ``since`` read back from the evidence archive (after a restart,
        or when ``since`` is older than memory holds); merged with the held ones by ``alert_id``.
        An archived alert that is published live later (archived, not yet sent) is not sent twice.
        ``events``: extra message types to send (``room``, ``decision``); with ``decision``
        the replay also carries the decisions on each replayed alert, right after it.
        Replay and registration happen without yielding, so no alert falls between them.
        """
        subscriber = Subscriber(alert_filter, self._subscriber_queue_alerts, events)
        if since is not None:
            # bounded by the replay buffer, separately from the live queue
            merged = {a["alert_id"]: a for a in archived if a["alert_id"] > since}
            held = {a["alert_id"] for a in self._replay}
            subscriber.replayed_ids = set(merged) - held
            merged.update((a["alert_id"], a) for a in self._replay if a["alert_id"] > since)
            for alert_id in sorted(merged):
                alert = merged[alert_id]
                if alert_filter.matches(alert):
                    subscriber.replay.append(alert)
                    if "decision" in events:
                        subscriber.replay.extend(self._decisions.get(alert_id, ()))
        self._subscribers.add(subscriber)
        self._metrics.subscribers.set(len(self._subscribers))
        return subscriber

    def end_all(self) -> None:
        """Server shutdown: each subscriber sends what it holds, then gets :data:`END_OF_ALERTS`."""
        for subscriber in list(self._subscribers):
            try:
                subscriber.queue.put_nowait(END_OF_ALERTS)
            except asyncio.QueueFull:
                subscriber.cut_reason = "server shutting down with alerts unsent; reconnect with since="
                subscriber.cut.set()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        self._metrics.subscribers.set(len(self._subscribers))

    fanout: Any = None
    """In cluster mode, the broker link (:class:`~monitor.cluster.fanout.Fanout`): what is
    published here also goes to every other gateway's subscribers, and theirs come here."""

    def publish(self, alert: dict[str, Any]) -> None:
        """Hold ``alert`` (wire form) for replay and queue it for every matching subscriber
        (on every gateway, in cluster mode; an alert id already seen is not sent again)."""
        if self.fanout is not None:
            if not self.fanout.first_time(str(alert["alert_id"])):
                return
            self.fanout.send("alert", alert)
        self.deliver_alert(alert)

    def deliver_alert(self, alert: dict[str, Any]) -> None:
        """:meth:`publish` on this gateway only."""
        if len(self._replay) == self._replay.maxlen:
            self._decisions.pop(self._replay[0]["alert_id"], None)
        self._replay.append(alert)
        for subscriber in list(self._subscribers):
            if subscriber.filter.matches(alert):
                self._deliver(subscriber, alert)
        if self._observers:
            self._tell_observers({"type": "alert", **alert})

    def publish_event(self, event: dict[str, Any]) -> None:
        """Queue a room event (``{"type": "room", ...}``) or a decision (``{"type": "decision", ...}``)
        for every subscriber that asked for its type and may see its room (on every gateway, in
        cluster mode); decisions on held alerts are held for replay too."""
        if self.fanout is not None:
            self.fanout.send("event", event)
        self.deliver_event(event)

    def deliver_event(self, event: dict[str, Any]) -> None:
        """:meth:`publish_event` on this gateway only."""
        if event["type"] == "decision" and any(a["alert_id"] == event.get("alert_id") for a in self._replay):
            self._decisions.setdefault(event["alert_id"], []).append(event)
        for subscriber in list(self._subscribers):
            kind = EVENT_KIND_OF_TYPE.get(event["type"], event["type"])
            if kind in subscriber.events and subscriber.filter.matches_event(event):
                self._deliver(subscriber, event)
        if self._observers:
            self._tell_observers(event)

    def _deliver(self, subscriber: Subscriber, alert: dict[str, Any]) -> None:
        if not subscriber.offer(alert) and subscriber.cut_reason and subscriber in self._subscribers:
            self._metrics.subscriber_disconnects.labels(reason="slow").inc()
            self.unsubscribe(subscriber)

    def held(self) -> Iterable[dict[str, Any]]:
        """The alerts held for replay, oldest first."""
        return tuple(self._replay)

    @property
    def subscribers(self) -> frozenset[Subscriber]:
        return frozenset(self._subscribers)
