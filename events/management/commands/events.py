"""``manage.py events list|asyncapi|dlq|retry|parked|replay|backfill|health|sweep|purge``: operate the bus."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from events import selectors, services
from events.apps import EventsConfig
from events.asyncapi import asyncapi_document
from events.catalogue import BY_NAME, CATALOGUE
from events.consumers import all_subscriptions, get_subscription


def _parse_since(value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise CommandError(f"--since: not an ISO 8601 date/time: {value!r}") from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


class Command(BaseCommand):
    help = "Inspect and operate the event bus."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="the catalogue: events, versions, producers, signals, consumers; counts")
        sub.add_parser("asyncapi", help="print the AsyncAPI 3.0 document (JSON)")
        sub.add_parser("dlq", help="dead-lettered deliveries with their last error")
        sub.add_parser("parked", help="parked deliveries (waiting for an earlier event)")
        retry = sub.add_parser("retry", help="re-deliver dead-lettered deliveries")
        retry.add_argument("ids", nargs="*", type=int)
        retry.add_argument("--all", action="store_true", dest="all_dead")
        replay = sub.add_parser("replay", help="re-deliver events since a time (idempotent consumers skip done ones)")
        replay.add_argument("--since", required=True)
        replay.add_argument("--name")
        replay.add_argument("--consumer")
        backfill = sub.add_parser("backfill", help="create and send a consumer's missing deliveries of events since "
                                                   "a time (a consumer added by a rolling deploy)")
        backfill.add_argument("consumer")
        backfill.add_argument("--since", required=True)
        health = sub.add_parser("health", help="exit 0 when healthy, 1 when a delivery is dead or pending too long")
        health.add_argument("--json", action="store_true", dest="as_json", help="print the verdict as a JSON object")
        sub.add_parser("sweep", help="run one sweep now (resend unsent/stale, due retries, stale parked)")
        sub.add_parser("purge", help="delete events past the retention whose deliveries are all done")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"do_{action}")(**options)

    def do_list(self, **options: Any) -> None:
        subs = all_subscriptions()
        for spec in CATALOGUE:
            self.stdout.write(f"{spec.name} v{spec.version}  (producer: {spec.producer})")
            self.stdout.write(f"    {spec.summary}")
            connected = EventsConfig.connected_signals.get(spec.name, [])
            self.stdout.write(f"    signals:   {', '.join(spec.signals)} (connected: {', '.join(connected) or 'none'})")
            consumers = sorted({*spec.consumers, *(s.name for s in subs if s.event_name == spec.name)})
            self.stdout.write(f"    consumers: {', '.join(consumers) or '-'}")
        counts = selectors.delivery_counts()
        self.stdout.write("deliveries: " + ", ".join(f"{k}={v}" for k, v in counts.items()))

    def do_asyncapi(self, **options: Any) -> None:
        self.stdout.write(json.dumps(asyncapi_document(), indent=2))

    def _deliveries(self, qs: Any, label: str) -> None:
        rows = list(qs)
        for d in rows:
            self.stdout.write(f"{d.pk}\t{d.event.name}\t{d.event_id}\t{d.consumer}\tfailures={d.failures}\t"
                              f"{d.updated_at.isoformat()}\t{d.last_error}")
        self.stdout.write(f"{len(rows)} {label}")

    def do_dlq(self, **options: Any) -> None:
        self._deliveries(selectors.deliveries_dead(), "dead")

    def do_parked(self, **options: Any) -> None:
        self._deliveries(selectors.deliveries_parked(), "parked")

    def do_retry(self, *, ids: list[int], all_dead: bool, **options: Any) -> None:
        if not ids and not all_dead:
            raise CommandError("give delivery ids or --all")
        if ids and not all_dead:
            known = set(selectors.deliveries_dead().filter(id__in=ids).values_list("id", flat=True))
            missing = sorted(set(ids) - known)
            if missing:
                raise CommandError(f"not dead-lettered deliveries: {', '.join(map(str, missing))}")
        count = services.deliveries_retry(delivery_ids=ids, all_dead=all_dead)
        self.stdout.write(f"re-delivered {count}")

    def do_replay(self, *, since: str, name: str | None, consumer: str | None, **options: Any) -> None:
        if name and name not in BY_NAME:
            raise CommandError(f"unknown event {name!r}")
        if consumer and get_subscription(consumer) is None:
            raise CommandError(f"unknown consumer {consumer!r}")
        result = services.events_replay(since=_parse_since(since), name=name, consumer=consumer)
        self.stdout.write(f"events={result.events} created={result.created} sent={result.sent}")

    def do_backfill(self, *, consumer: str, since: str, **options: Any) -> None:
        if get_subscription(consumer) is None:
            raise CommandError(f"unknown consumer {consumer!r}")
        result = services.deliveries_backfill(consumer=consumer, since=_parse_since(since))
        self.stdout.write(f"created={result.created} sent={result.sent}")

    def do_health(self, *, as_json: bool, **options: Any) -> None:
        verdict = selectors.bus_health()
        if as_json:
            self.stdout.write(json.dumps(verdict))
        else:
            self.stdout.write("healthy" if verdict["healthy"] else "unhealthy: " + "; ".join(verdict["problems"]))
            self.stdout.write(f"dead={verdict['dead']} parked={verdict['parked']} open={verdict['open']} "
                              f"oldest_pending_seconds={verdict['oldest_pending_seconds']}")
        if not verdict["healthy"]:
            raise SystemExit(1)

    def do_sweep(self, **options: Any) -> None:
        r = services.bus_sweep()
        self.stdout.write(f"resent={r.resent} retried={r.retried} woken={r.woken} expired={r.expired}")

    def do_purge(self, **options: Any) -> None:
        self.stdout.write(f"purged {services.events_purge()}")
