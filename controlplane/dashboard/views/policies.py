"""Policies: versions, a version with its diff, new drafts, publish/rollback, simulation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect

from controlplane.core.errors import TollgateError
from controlplane.core.ids import ID_RE
from controlplane.dashboard.forms import PolicyDraftForm, SimulationForm
from controlplane.dashboard.views.base import DashboardView
from enforcement.models import Policy, SimulationJob
from enforcement.policy.diff import document_diff, document_yaml
from enforcement.services import policies as policy_services
from enforcement.services.simulation_jobs import simulation_job_create

LIST_FIELDS = (
    "id",
    "tenant_id",
    "version",
    "state",
    "sha256",
    "description",
    "warnings",
    "rolled_back_from",
    "created_by",
    "created_at",
    "published_at",
)


def run_simulation(
    *, tenant, policy, since: datetime, until: datetime, requested_by: str
) -> SimulationJob:
    """The one call from the dashboard into the simulation service: a bounded background job
    (validated here, replayed by a worker; the job's page follows its progress)."""
    return simulation_job_create(
        tenant=tenant, policy=policy, since=since, until=until, requested_by=requested_by
    )


def policy_diff(old: Policy | None, new: Policy) -> str:
    if old is None:
        return ""
    return document_diff(
        old.document, new.document, old_label=f"v{old.version}", new_label=f"v{new.version}"
    )


def _error_lines(exc: TollgateError) -> list[str]:
    lines = []
    for error in exc.errors or []:
        where = error.get("field") or "(document)"
        if error.get("line"):
            where += f" (line {error['line']})"
        lines.append(f"{where}: {error['message']}")
    return lines or [exc.message]


class PoliciesView(DashboardView):
    section = "policies"
    title = "Policies"
    manage_methods = ("POST",)

    def _versions(self):
        return list(Policy.objects.for_tenant(self.tenant).only(*LIST_FIELDS).order_by("-version"))

    def get(self, request):
        return self.render(
            "dashboard/policies.html", versions=self._versions(), draft_form=PolicyDraftForm()
        )

    def post(self, request):
        """Create a draft from a pasted document (validated like the API)."""
        form = PolicyDraftForm(request.POST)
        errors = []
        if form.is_valid():
            try:
                draft = policy_services.policy_create_draft(
                    tenant=self.tenant,
                    text=form.cleaned_data["document"],
                    created_by=f"dashboard:{request.user.get_username()}",
                )
            except TollgateError as exc:
                errors = _error_lines(exc)
            else:
                messages.success(request, f"Draft version {draft.version} created.")
                return redirect("dashboard:policy", version=draft.version)
        return self.render(
            "dashboard/policies.html",
            status=400,
            versions=self._versions(),
            draft_form=form,
            draft_errors=errors,
        )


class PolicyDetailView(DashboardView):
    section = "policies"
    title = "Policy"
    manage_methods = ("POST",)

    def get(self, request, version: int):
        policy = Policy.objects.for_tenant(self.tenant).filter(version=version).first()
        if policy is None:
            return self.not_found(f"policy version {version}")
        against = request.GET.get("against", "")
        base = Policy.objects.for_tenant(self.tenant).filter(version__lt=version)
        previous = (
            base.filter(version=int(against)).first()
            if against.isdigit()
            else base.order_by("-version").first()
        )
        return self.render(
            "dashboard/policy.html",
            policy=policy,
            previous=previous,
            document=document_yaml(policy.document),
            diff=policy_diff(previous, policy),
            title=f"Policy version {policy.version}",
        )

    def post(self, request, version: int):
        """Publish this version; a retired one is rolled back to (published as a new version)."""
        try:
            published = policy_services.policy_publish(
                tenant=self.tenant,
                version=version,
                published_by=f"dashboard:{request.user.get_username()}",
            )
        except TollgateError as exc:
            messages.error(request, f"v{version}: {exc.message}")
            return redirect("dashboard:policy", version=version)
        if published.rolled_back_from:
            messages.success(
                request,
                f"Rolled back: version {published.version} publishes the document of version "
                f"{published.rolled_back_from}.",
            )
        else:
            messages.success(request, f"Version {published.version} is published.")
        for warning in published.warnings:
            messages.warning(request, f"{warning['field']}: {warning['message']}")
        return redirect("dashboard:policy", version=published.version)


def _day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class SimulationView(DashboardView):
    section = "policies"
    title = "Simulate a policy"

    def render(self, template: str, status: int = 200, **extra):
        return super().render(
            template, status, max_decisions=settings.SIMULATION_MAX_DECISIONS, **extra
        )

    def _form(self, data=None):
        versions = [
            (p.version, f"v{p.version} ({p.state}) {p.description[:60]}")
            for p in Policy.objects.for_tenant(self.tenant)
            .only("id", "version", "state", "description")
            .order_by("-version")
        ]
        today = datetime.now(UTC).date()
        initial = {"since": today - timedelta(days=30), "until": today}
        return SimulationForm(data, versions=versions, initial=initial)

    def get(self, request):
        return self.render("dashboard/simulate.html", form=self._form())

    def post(self, request):
        form = self._form(request.POST)
        if not form.is_valid():
            return self.render("dashboard/simulate.html", status=400, form=form)
        data = form.cleaned_data
        try:
            if data.get("version"):
                row = Policy.objects.for_tenant(self.tenant).get(version=int(data["version"]))
                compiled = policy_services.compiled_for_row(row)
            else:
                normalised, _, _ = policy_services.validate_policy_input(text=data["document"])
                compiled = policy_services.compiled_from_document(normalised)
            job = run_simulation(
                tenant=self.tenant,
                policy=compiled,
                since=_day_start(data["since"]),
                until=_day_start(data["until"] + timedelta(days=1)),
                requested_by=f"dashboard:{request.user.get_username()}",
            )
        except TollgateError as exc:
            return self.render(
                "dashboard/simulate.html",
                status=exc.status_code if exc.status_code >= 500 else 400,
                form=form,
                errors=_error_lines(exc),
            )
        return redirect("dashboard:simulation", job_id=job.id)


class SimulationJobView(SimulationView):
    """One simulation job: its progress while a worker replays the window, then its report."""

    def get(self, request, job_id: str):
        job = (
            SimulationJob.objects.filter(tenant=self.tenant, pk=job_id).first()
            if ID_RE.match(job_id)
            else None
        )
        if job is None:
            return self.not_found("simulation")
        form = self._form()
        form.initial.update(
            {
                "version": job.policy_version or "",
                "since": job.since.date(),
                "until": (job.until - timedelta(days=1)).date(),
            }
        )
        return self.render("dashboard/simulate.html", form=form, job=job)

    def post(self, request, job_id: str):
        return SimulationView.post(self, request)
