"""`yntymak sync` when pending data does not fit in one bundle: every part is sent.

sync.http.sync_with_hq uploads the bundles waiting in the outbox, then one new bundle, and
applies each receipt at once. When the new bundle could not hold everything pending
(sync/split.py), it is called again: the receipt of the part before has acknowledged what
that part carried, so the next bundle holds the rest. It stops when nothing is pending, or
when a call made no bundle or acknowledged nothing more (it never loops for ever). Records
an unacknowledged bundle on a USB stick carries go too: over HTTP, HQ answers at once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from yntymak_cli.store import device_sync
from yntymak_cli.store.db import Store
from yntymak_cli.store.reviews import Decision
from yntymak_cli.sync import http
from yntymak_cli.sync.keys import DeviceIdentity, HqPublic


def sync_all(
    store: Store, device: DeviceIdentity, hq_public: HqPublic, url: str, **options: Any
) -> http.SyncResult:
    """sync_with_hq (same options) until every part is sent; one result for all the calls."""
    result = http.sync_with_hq(store, device, hq_public, url, **options)
    pending = device_sync.pending_count(store)
    # Pending must shrink at each call (what no bundle can hold never does): it ends.
    while result.created is not None and pending:
        more = http.sync_with_hq(store, device, hq_public, url, **options)
        result = _merged(result, more)
        before, pending = pending, device_sync.pending_count(store)
        if more.created is None or pending >= before:
            break
    return result


def _merged(first: http.SyncResult, then: http.SyncResult) -> http.SyncResult:
    decisions: dict[int, Decision] = {d.decision_id: d for d in first.decisions}
    for d in then.decisions:
        decisions.setdefault(d.decision_id, d)
    return replace(
        first,
        sent=first.sent + then.sent,
        created=then.created if then.created is not None else first.created,
        too_large=then.too_large if then.created is not None else first.too_large,
        acks=first.acks + then.acks,
        decisions=tuple(decisions.values()),
    )
