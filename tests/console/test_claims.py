"""Claims (monitor.server.claims) and the taxonomy the console reads (no browser, no models)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import ArchiveError
from monitor.server.auth import Grant
from monitor.server.claims import ClaimDesk, ClaimRefused
from monitor.server.console_routes import taxonomy
from monitor.server.hub import AlertFilter, AlertHub, parse_subscription
from monitor.server.metrics import ServerMetrics

REPO = Path(__file__).resolve().parents[2]
EVIDENCE = {"a" * 32: ("room-1", "alert-1"), "b" * 32: ("room-2", "alert-2")}

ALICE = Grant(role="moderator", rooms=None, name="Mod Alice", token_id="t-alice")
BOB = Grant(role="moderator", rooms=None, name="Mod Bob", token_id="t-bob")
ADMIN = Grant(role="admin", rooms=None, name="Admin Ada", token_id="t-admin")
ANCHOR = Grant(role="anchor", rooms=frozenset({"room-1"}), token_id="t-anchor")


@dataclass
class Summary:
    room_id: str
    alert_id: str


class FakeArchive:
    def get(self, evidence_id: str) -> Summary:
        if evidence_id not in EVIDENCE:
            raise ArchiveError(f"no evidence with id {evidence_id}")
        return Summary(*EVIDENCE[evidence_id])


class FakeEvidence:
    def require(self) -> FakeArchive:
        return FakeArchive()


def make_desk(ttl_s: float = 60.0) -> tuple[ClaimDesk, AlertHub]:
    hub = AlertHub(ServerMetrics(), replay_buffer_alerts=10, subscriber_queue_alerts=100)
    return ClaimDesk(hub, lambda: FakeEvidence(), ttl_s=ttl_s), hub  # type: ignore[arg-type,return-value]


def drain(queue: asyncio.Queue[dict[str, Any]]) -> list[dict[str, Any]]:
    messages = []
    while not queue.empty():
        messages.append(queue.get_nowait())
    return messages


def test_one_moderator_per_alert_and_who_holds_it() -> None:
    async def scenario() -> None:
        desk, hub = make_desk()
        watching = hub.subscribe(AlertFilter(BOB), events=parse_subscription(BOB, "include=claims").events)
        not_asking = hub.subscribe(AlertFilter(BOB), events=parse_subscription(BOB, "include=decisions").events)
        claim = await desk.claim(ALICE, "a" * 32)
        assert (claim.moderator, claim.room_id, claim.alert_id) == ("Mod Alice", "room-1", "alert-1")
        with pytest.raises(ClaimRefused) as refused:
            await desk.claim(BOB, "a" * 32)
        assert refused.value.status == 409 and "claimed by Mod Alice until" in str(refused.value)
        assert refused.value.holder is claim
        first_expiry = claim.expires_at
        await asyncio.sleep(0.01)
        assert (await desk.claim(ALICE, "a" * 32)).expires_at > first_expiry  # the holder renews
        with pytest.raises(ClaimRefused) as not_holder:
            await desk.release(BOB, "a" * 32)
        assert not_holder.value.status == 403 and "Mod Alice" in str(not_holder.value)
        await desk.release(ALICE, "a" * 32)
        assert desk.get("a" * 32) is None
        assert (await desk.claim(BOB, "a" * 32)).moderator == "Mod Bob"  # free again
        await desk.release(ADMIN, "a" * 32)  # an admin may release anyone's claim
        with pytest.raises(ClaimRefused) as gone:
            await desk.release(ALICE, "a" * 32)
        assert gone.value.status == 404
        messages = drain(watching.queue)
        assert [(m["type"], m["moderator"]) for m in messages] == [
            ("claim", "Mod Alice"), ("claim", "Mod Alice"), ("claim_released", "Mod Alice"),
            ("claim", "Mod Bob"), ("claim_released", "Mod Bob"),
        ]
        assert messages[0]["evidence_id"] == "a" * 32 and messages[0]["expires_at"].endswith("Z")
        assert messages[2]["reason"] == "released"
        assert drain(not_asking.queue) == []

    asyncio.run(scenario())


def test_claims_expire_after_their_ttl() -> None:
    async def scenario() -> None:
        desk, hub = make_desk(ttl_s=0.05)
        watching = hub.subscribe(AlertFilter(BOB), events=frozenset({"claim"}))
        await desk.claim(ALICE, "b" * 32)
        await asyncio.sleep(0.15)
        assert desk.get("b" * 32) is None
        assert (await desk.claim(BOB, "b" * 32)).moderator == "Mod Bob"
        released = [m for m in drain(watching.queue) if m["type"] == "claim_released"]
        assert [(m["moderator"], m["reason"]) for m in released] == [("Mod Alice", "expired")]

    asyncio.run(scenario())


def test_claims_refused_by_role_scope_and_unknown_record() -> None:
    async def scenario() -> None:
        desk, _ = make_desk()
        with pytest.raises(ClaimRefused) as role:
            await desk.claim(ANCHOR, "a" * 32)
        assert role.value.status == 403 and "role 'anchor'" in str(role.value)
        scoped = Grant(role="moderator", rooms=frozenset({"room-1"}), name="Scoped", token_id="t-s")
        # moderators see every room (their rooms list is ignored by auth); a Grant with rooms is still honoured here
        with pytest.raises(ClaimRefused) as scope:
            await desk.claim(scoped, "b" * 32)
        assert scope.value.status == 403 and "outside the token's rooms" in str(scope.value)
        with pytest.raises(ClaimRefused) as unknown:
            await desk.claim(ALICE, "c" * 32)
        assert unknown.value.status == 404
        await desk.claim(ALICE, "b" * 32)
        assert [c.evidence_id for c in desk.claims(scoped)] == []  # a claim outside the rooms is not listed
        assert [c.evidence_id for c in desk.claims(BOB)] == ["b" * 32]

    asyncio.run(scenario())


def test_taxonomy_has_chinese_titles_from_the_lexicons_and_rule_terms() -> None:
    found = taxonomy(REPO / "lexicons")
    by_id = {c["id"]: c for c in found["categories"]}
    assert by_id["medical_claim"]["zh"] == "医疗功效与疾病治疗宣称"
    assert by_id["medical_claim"]["en"] == "Medical and disease claims"
    assert len(by_id) == 10 and all(c["zh"] != c["id"] for c in by_id.values())
    assert [s["zh"] for s in found["severities"]] == ["待核实", "警告", "违规"]
    assert found["rules"]["OFF-009"] == {"term": "国礼", "category": "official_endorsement", "severity": "violation"}
    assert {"jewelry", "tea"} <= {r["id"] for r in found["room_categories"]}
