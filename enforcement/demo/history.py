"""A month of decision history, made by the real services and then dated back.

Every decision, hold, commit, vote and ledger entry is written by the same services the API
uses; afterwards the rows are given the dates of the story (``created_at``, the day's spend
rollup), so charts, burn rates and simulations have a month to work with. The ledger keeps
the time the demo wrote it (its entries are hash-chained and never rewritten).

Spend lands only on days of the current month (the budget periods that hold it); the days
before it carry decisions whose holds were released, so nothing is charged to a month whose
periods never saw it.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db.models import F

from controlplane.core.clock import db_now
from controlplane.core.money import parse_usd
from controlplane.tenancy.models import Membership
from enforcement.models import (
    ApprovalRequest,
    ApprovalVote,
    Decision,
    Reservation,
    SpendRollup,
)
from enforcement.periods import period_bounds
from enforcement.services.approvals import approval_cancel, approval_vote
from enforcement.services.gate import CannotDecide, GateRequest, gate_decide
from enforcement.services.reservations import reservation_commit, reservation_release

WINDOW_DAYS = 30
CHUNK_USD = 900  # below the demo policy's 1,000 USD approval threshold
# Committed spend this month per (project, environment, source), in USD: payments prod well
# inside its budget, platform near its limit (86 %), ml just under it until the overrun below.
MONTH_SPEND = [
    ("payments", "prod", "terraform", 6000),
    ("payments", "staging", "terraform", 900),
    ("ml", "dev", "api", 1820),
]
PLATFORM_MONTH = 3450  # platform prod + dev together, of a 4,000 USD budget
PLATFORM_DEV_DAY = 40
GPU_JOB = {"type": "k8s_job", "id": "train-nightly", "attributes": {"gpu": 2, "team": "ml"}}


def _usd(amount: float) -> str:
    return f"{amount:.2f}"


class Story:
    """Gate calls and their follow-ups at story times (dated back once written)."""

    def __init__(self, tenant):
        self.tenant = tenant
        self.now = db_now()
        self.today = self.now.date()
        self.month_start, _ = period_bounds("monthly", self.today)
        self.count = 0
        self.last: datetime | None = None

    def moment(self, day: date, hour: int) -> datetime:
        """``hour`` o'clock on ``day`` (today's hours squeezed into the part already past),
        never before the previous event: ids, which follow insertion, follow story time."""
        start = datetime.combine(day, time.min, tzinfo=UTC)
        span = min(self.now - start, timedelta(days=1)) - timedelta(minutes=1)
        at = start + span * (hour / 24)
        if self.last is not None:
            at = max(at, self.last + timedelta(seconds=1))
        self.last = min(at, self.now - timedelta(seconds=1))
        return self.last

    def ask(self, day, hour, *, project, environment, usd, source="api", **fields) -> dict:
        self.count += 1
        fields.setdefault("requester", "ci-bot@example.com")
        key = fields.pop("key", f"demo:{day.isoformat()}:{self.count}")
        request = GateRequest(
            source=source,
            idempotency_key=key,
            project=project,
            environment=environment,
            estimated_micros=parse_usd(_usd(usd)),
            **fields,
        )
        answer = self._decide(request)
        at = self.moment(day, hour)
        Decision.objects.filter(pk=answer["decision_id"]).update(created_at=at)
        if answer.get("reservation"):
            Reservation.objects.filter(pk=answer["reservation"]["id"]).update(created_at=at)
        if answer["outcome"] == "REQUIRE_APPROVAL":
            ApprovalRequest.objects.filter(pk=answer["approval"]["id"]).update(created_at=at)
        answer["_at"], answer["_request"] = at, request
        return answer

    def _decide(self, request: GateRequest, attempts: int = 5) -> dict:
        """The gate's answer; a decision that missed its deadline (a busy machine: the demo's
        policy keeps the production 250 ms) wrote nothing and is asked again, with the same
        idempotency key, as any caller would."""
        for attempt in range(attempts):
            try:
                return gate_decide(tenant=self.tenant, api_key=None, req=request).response
            except CannotDecide as exc:
                if exc.cause != "deadline" or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def commit(self, answer: dict, usd: float) -> None:
        reservation_id = answer["reservation"]["id"]
        reservation, _ = reservation_commit(
            reservation_id=reservation_id, actual_micros=parse_usd(_usd(usd))
        )
        at = answer["_at"] + timedelta(minutes=40)
        Reservation.objects.filter(pk=reservation_id).update(resolved_at=min(at, self.now))
        if at.date() != self.today:
            self._move_spend(reservation, parse_usd(_usd(usd)), at.date())

    def release(self, answer: dict) -> None:
        reservation_release(reservation_id=answer["reservation"]["id"])

    def _move_spend(self, reservation: Reservation, amount: int, day: date) -> None:
        """The commit rolled today's spend up; the story spent it on ``day``."""
        decision = reservation.decision
        scope = {
            "tenant_id": reservation.tenant_id,
            "project_id": decision.project_id,
            "environment": decision.environment,
        }
        SpendRollup.objects.filter(**scope, day=self.today).update(
            spent_micros=F("spent_micros") - amount
        )
        SpendRollup.objects.bulk_create(
            [SpendRollup(**scope, day=day, spent_micros=0)], ignore_conflicts=True
        )
        SpendRollup.objects.filter(**scope, day=day).update(spent_micros=F("spent_micros") + amount)

    def vote(self, answer: dict, user, vote: str, comment: str, hours_later: int = 2) -> None:
        approval_id = answer["approval"]["id"]
        result = approval_vote(
            approval_id=approval_id,
            tenant_id=self.tenant.id,
            user=user,
            vote=vote,
            comment=comment,
            via="dashboard",
        )
        at = min(answer["_at"] + timedelta(hours=hours_later), self.now)
        ApprovalVote.objects.filter(pk=result.vote.pk).update(created_at=at)
        if result.approval.state != ApprovalRequest.State.PENDING:
            ApprovalRequest.objects.filter(pk=approval_id).update(resolved_at=at)
        answer["_token"] = result.token


def _chunks(total: float, parts_min: int = 1) -> list[float]:
    count = max(parts_min, int(-(-total // CHUNK_USD)))
    share = round(total / count, 2)
    return [share] * (count - 1) + [round(total - share * (count - 1), 2)]


def _people(tenant) -> dict:
    users = get_user_model().objects
    owner = (
        Membership.objects.filter(tenant=tenant, role=Membership.Role.OWNER)
        .select_related("user")
        .order_by("created_at")
        .first()
    )
    return {
        "owner": owner.user,
        "fiona": users.get(username="fiona"),
        "ravi": users.get(username="ravi"),
    }


def seed_history(*, tenant) -> None:
    """Plan the month's events, then run them in story order (so ids follow story time)."""
    story = Story(tenant)
    people = _people(tenant)
    first = story.today - timedelta(days=WINDOW_DAYS - 1)
    days = [first + timedelta(days=i) for i in range(WINDOW_DAYS)]
    this_month = [d for d in days if d >= story.month_start]
    events: list[tuple[tuple, object]] = []

    def at(day: date, hour: int, action) -> None:
        events.append(((day, hour, len(events)), action))

    def ask_and_release(day, hour, **fields):
        at(day, hour, lambda: story.release(story.ask(day, hour, **fields)))

    def ask_and_commit(day, hour, spend, **fields):
        at(day, hour, lambda: story.commit(story.ask(day, hour, **fields), spend))

    def ask_only(day, hour, **fields):
        at(day, hour, lambda: story.ask(day, hour, **fields))

    for index, day in enumerate(days):
        if day < story.month_start:
            # Last month (its budget periods are not the demo's): plans that were discarded and
            # previews torn down before they cost anything. Their holds were released.
            for hour, (project, environment, source, usd) in enumerate(
                [
                    ("payments", "prod", "terraform", 600 + 10 * index),
                    ("payments", "staging", "terraform", 120),
                    ("platform", "prod", "kubernetes", 310),
                ],
                start=9,
            ):
                ask_and_release(
                    day,
                    hour,
                    project=project,
                    environment=environment,
                    usd=usd,
                    source=source,
                    action="deploy.plan",
                )
        if index % 3 == 0:
            ask_only(day, 11, project="ml", environment="dev", usd=85, resource=GPU_JOB)
        if index % 10 == 4:
            ask_only(
                day, 15, project="payments", environment="prod", usd=30000, action="dr.rebuild"
            )
    platform_prod = (PLATFORM_MONTH - PLATFORM_DEV_DAY * len(this_month)) / len(this_month)
    spend = [
        *MONTH_SPEND,
        ("platform", "dev", "kubernetes", PLATFORM_DEV_DAY * len(this_month)),
        ("platform", "prod", "kubernetes", platform_prod * len(this_month)),
    ]
    for day in this_month:
        hour = 9
        for project, environment, source, total in spend:
            for amount in _chunks(total / len(this_month)):
                ask_and_commit(
                    day,
                    hour,
                    amount,
                    project=project,
                    environment=environment,
                    usd=round(amount * 1.05, 2),
                    source=source,
                    action="deploy.apply",
                )
                hour = min(hour + 1, 19)
    at(story.today, 20, lambda: _ml_overrun(story))
    for day, hour, flow in _approval_flows(story):
        at(day, hour, lambda flow=flow, day=day: flow(story, people, day))
    for _, action in sorted(events, key=lambda event: event[0]):
        action()


def _ml_overrun(story: Story) -> None:
    """An estimate that was too low (the budget goes over), then credits cover a small job."""
    overrun = story.ask(story.today, 12, project="ml", environment="dev", usd=180, action="train")
    # Recorded with an invariant_violation ledger entry (spend is never dropped); its error log
    # line is the expected part of this story, not a seeding failure, so it is not printed.
    reservations_log = logging.getLogger("enforcement.services.reservations")
    level = reservations_log.level
    reservations_log.setLevel(logging.CRITICAL)
    try:
        story.commit(overrun, 260)
    finally:
        reservations_log.setLevel(level)
    covered = story.ask(story.today, 13, project="ml", environment="dev", usd=40, action="eval")
    story.commit(covered, 38)  # ALLOW_WITH_CREDITS: the budget is spent, the credits pay


def _approval_flows(story: Story) -> list:
    """(day, hour, flow): approved and continued, denied, withdrawn, and two still pending."""
    start = story.month_start
    return [
        (max(start, story.today - timedelta(days=12)), 10, _approved_and_continued),
        (max(start, story.today - timedelta(days=6)), 11, _denied),
        (max(start, story.today - timedelta(days=3)), 9, _withdrawn),
        (story.today, 21, _pending),
    ]


def _approved_and_continued(story: Story, people: dict, day: date) -> None:
    fields = {
        "project": "payments",
        "environment": "prod",
        "usd": 1800,
        "source": "terraform",
        "action": "db.migrate",
        "requester": "dana@example.com",
    }
    approved = story.ask(day, 10, **fields)
    story.vote(approved, people["fiona"], "approve", "Migration window agreed with FinOps.")
    continued = story.ask(
        day,
        13,
        **fields,
        key=approved["_request"].idempotency_key,
        approval_token=approved["_token"],
    )
    story.commit(continued, 1750)


def _denied(story: Story, people: dict, day: date) -> None:
    denied = story.ask(
        day,
        11,
        project="payments",
        environment="prod",
        usd=2400,
        action="cluster.expand",
        requester="dana@example.com",
    )
    story.vote(denied, people["owner"], "deny", "Not this quarter; revisit after the freeze.")


def _withdrawn(story: Story, people: dict, day: date) -> None:
    cancelled = story.ask(
        day, 9, project="payments", environment="prod", usd=1100, action="cache.resize"
    )
    approval_cancel(
        approval_id=cancelled["approval"]["id"],
        tenant_id=story.tenant.id,
        reason="api-key:ci: pipeline aborted",
    )


def _pending(story: Story, people: dict, day: date) -> None:
    story.ask(day, 8, project="payments", environment="prod", usd=1200, action="db.scale_up")
    big = story.ask(
        day,
        9,
        project="payments",
        environment="prod",
        usd=5500,
        source="terraform",
        action="cluster.expand",
        requester="dana@example.com",
    )
    story.vote(
        big, people["fiona"], "approve", "Capacity for the launch; needs a second approver.", 0
    )
