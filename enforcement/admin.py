"""Operator admin for budgets, grants, decisions and reservations (writes go through services)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.html import format_html

from billing.catalog import CREDIT_GRANTS, LLM_GATEWAY
from billing.entitlements import EntitledAdminMixin
from controlplane.core.admin import UsdFieldsMixin, usd_display, usd_text
from controlplane.core.errors import TollgateError
from controlplane.core.forms import UsdField
from enforcement.models import (
    ApprovalRequest,
    ApprovalToken,
    ApprovalVote,
    Budget,
    BudgetPeriod,
    CreditGrant,
    Decision,
    LlmCall,
    Policy,
    Reservation,
    ReservationAllocation,
    SigningKey,
)
from enforcement.policy.diff import document_diff, document_yaml
from enforcement.services import approvals as approval_services
from enforcement.services import budgets as budget_services
from enforcement.services import policies as policy_services
from enforcement.services import reservations as reservation_services


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class BudgetForm(forms.ModelForm):
    limit_micros = UsdField(label="Limit (USD)")

    class Meta:
        model = Budget
        fields = [
            "tenant",
            "name",
            "project",
            "environment",
            "period",
            "limit_micros",
            "alert_thresholds",
            "forecast_alert",
        ]

    def clean(self):
        data = super().clean()
        project = data.get("project")
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        if project and tenant and project.tenant_id != tenant.pk:
            self.add_error("project", "This project belongs to another tenant.")
        if tenant is not None:
            try:
                budget_services.check_alert_settings(
                    tenant, data.get("alert_thresholds"), data.get("forecast_alert", False)
                )
            except TollgateError as exc:
                field = "forecast_alert" if exc.status_code == 403 else "alert_thresholds"
                self.add_error(field, f"{exc.code}: {exc.message} {exc.remediation or ''}")
        return data


def _current_period(field: str):
    """The budget's period containing today, read in the changelist query (no per-row query)."""
    today = timezone.now().date()
    return Subquery(
        BudgetPeriod.objects.filter(
            budget=OuterRef("pk"), period_start__lte=today, period_end__gt=today
        ).values(field)[:1]
    )


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    """Budgets are never deleted (the API has no DELETE; periods and the ledger refer to them)."""

    form = BudgetForm
    list_display = ["label", "tenant", "scope", "period", "limit", "spent", "reserved", "available"]
    list_display_links = ["label"]
    list_filter = ["period", "tenant"]
    search_fields = ["id", "name", "project__slug", "environment", "tenant__slug"]
    list_select_related = ["tenant", "project"]
    readonly_fields = ["id", "spent", "reserved", "available", "created_at", "updated_at"]

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                current_limit=_current_period("limit_micros"),
                current_reserved=_current_period("reserved_micros"),
                current_spent=_current_period("spent_micros"),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return [*self.readonly_fields, "tenant", "project", "environment", "period"]
        return ["id", "created_at", "updated_at"]

    @admin.display(description="budget", ordering="name")
    def label(self, obj):
        return obj.name or f"{obj.scope_label} {obj.period}"

    @admin.display(description="scope")
    def scope(self, obj):
        return obj.scope_label

    limit = usd_display("limit_micros", "limit (USD)")

    @admin.display(description="spent (USD)")
    def spent(self, obj):
        return usd_text(obj.current_spent or 0)

    @admin.display(description="reserved (USD)")
    def reserved(self, obj):
        return usd_text(obj.current_reserved or 0)

    @admin.display(description="available (USD)")
    def available(self, obj):
        if obj.current_limit is None:  # no decision opened this period yet
            return usd_text(obj.limit_micros)
        return usd_text(obj.current_limit - obj.current_reserved - obj.current_spent)

    def save_model(self, request, obj, form, change):
        if change:
            budget_services.budget_update(
                budget=obj,
                limit_micros=obj.limit_micros,
                name=obj.name,
                alert_thresholds=obj.alert_thresholds or None,
                forecast_alert=obj.forecast_alert,
            )
            return
        created = budget_services.budget_create(
            tenant=obj.tenant,
            limit_micros=obj.limit_micros,
            period=obj.period,
            project=obj.project,
            environment=obj.environment,
            name=obj.name,
            alert_thresholds=obj.alert_thresholds or None,
            forecast_alert=obj.forecast_alert,
        )
        obj.pk = created.pk


@admin.register(BudgetPeriod)
class BudgetPeriodAdmin(UsdFieldsMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "budget",
        "period_start",
        "period_end",
        "limit",
        "reserved",
        "spent",
        "available",
    ]
    list_filter = ["period_start"]
    search_fields = ["id", "budget__id"]
    list_select_related = ["budget__project"]

    limit = usd_display("limit_micros", "limit (USD)")
    reserved = usd_display("reserved_micros", "reserved (USD)")
    spent = usd_display("spent_micros", "spent (USD)")
    available = usd_display("available_micros", "available (USD)", sortable=False)


class CreditGrantForm(forms.ModelForm):
    amount_micros = UsdField(label="Amount (USD)")

    class Meta:
        model = CreditGrant
        fields = [
            "tenant",
            "pool",
            "amount_micros",
            "priority",
            "effective_at",
            "expires_at",
            "note",
        ]


@admin.register(CreditGrant)
class CreditGrantAdmin(EntitledAdminMixin, UsdFieldsMixin, admin.ModelAdmin):
    """Grants are created and voided, never edited or deleted (holds refer to them)."""

    entitlement = CREDIT_GRANTS
    form = CreditGrantForm
    list_display = [
        "id",
        "tenant",
        "pool",
        "amount",
        "remaining",
        "priority",
        "expires_at",
        "voided_at",
    ]
    list_filter = ["pool", "tenant"]
    search_fields = ["id", "note", "tenant__slug"]
    list_select_related = ["tenant"]
    readonly_fields = ["id", "remaining_micros", "voided_at", "created_at", "updated_at"]
    actions = ["void"]

    amount = usd_display("amount_micros", "amount (USD)")
    remaining = usd_display("remaining_micros", "remaining (USD)")

    def has_change_permission(self, request, obj=None):
        return obj is None

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else super().get_readonly_fields(request, obj)

    def save_model(self, request, obj, form, change):
        created = budget_services.credit_grant_create(
            tenant=obj.tenant,
            amount_micros=obj.amount_micros,
            pool=obj.pool,
            priority=obj.priority,
            effective_at=obj.effective_at,
            expires_at=obj.expires_at,
            note=obj.note,
        )
        obj.pk = created.pk

    @admin.action(description="Void selected grants")
    def void(self, request, queryset):
        for grant in self.entitled_queryset(request, queryset):
            try:
                budget_services.credit_grant_void(grant=grant)
            except TollgateError as exc:
                self.message_user(request, f"{grant.id}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{grant.id}: void; it is drawn no more.")


class AllocationInline(UsdFieldsMixin, ReadOnlyMixin, admin.TabularInline):
    model = ReservationAllocation
    fields = ["position", "budget_period", "credit_grant", "amount_micros", "charged_micros"]
    readonly_fields = fields
    extra = 0


@admin.register(Decision)
class DecisionAdmin(UsdFieldsMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "tenant",
        "source",
        "project",
        "environment",
        "outcome",
        "reason_code",
        "amount",
        "created_at",
    ]
    list_filter = ["outcome", "mode", "reason_code", "source", "environment", "project"]
    search_fields = ["id", "idempotency_key", "fingerprint"]
    list_select_related = ["tenant", "project"]
    # The JSON columns are for the detail page, never the list.
    list_per_page = 50

    amount = usd_display("amount_micros", "amount (USD)")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            return queryset.defer("request", "response", "snapshot")
        return queryset


@admin.register(Reservation)
class ReservationAdmin(UsdFieldsMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "tenant",
        "state",
        "amount",
        "reported",
        "late",
        "expires_at",
        "created_at",
    ]
    list_filter = ["state", "late"]
    search_fields = ["id", "decision__id"]
    list_select_related = ["tenant"]
    inlines = [AllocationInline]
    actions = ["release"]

    amount = usd_display("amount_micros", "amount (USD)")
    reported = usd_display("reported_micros", "reported (USD)")

    @admin.action(description="Release selected pending reservations")
    def release(self, request, queryset):
        for reservation in queryset:
            try:
                reservation_services.reservation_release(reservation_id=reservation.id)
            except TollgateError as exc:
                self.message_user(request, f"{reservation.id}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{reservation.id}: released, the money is back.")


class PolicyDraftForm(forms.ModelForm):
    """Adding a policy in the admin creates a draft through the service (validated like the API)."""

    source_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "style": "font-family: monospace"}),
        label="Policy document (YAML or JSON)",
    )

    class Meta:
        model = Policy
        fields = ["tenant", "source_text"]

    def clean(self):
        cleaned = super().clean()
        text = cleaned.get("source_text")
        if text:
            try:
                policy_services.validate_policy_input(text=text)
            except TollgateError as exc:
                for error in exc.errors or []:
                    line = f" (line {error['line']})" if error.get("line") else ""
                    self.add_error(
                        "source_text", f"{error['field'] or '(document)'}{line}: {error['message']}"
                    )
        return cleaned


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = [
        "tenant",
        "version",
        "state",
        "short_sha",
        "description",
        "created_at",
        "published_at",
    ]
    list_filter = ["state", "tenant"]
    search_fields = ["id", "sha256", "tenant__slug", "description"]
    list_select_related = ["tenant"]
    actions = ["publish"]
    readonly_fields = [
        "id",
        "tenant",
        "version",
        "state",
        "sha256",
        "description",
        "rolled_back_from",
        "warnings",
        "created_by",
        "created_at",
        "published_by",
        "published_at",
        "retired_at",
        "document_yaml",
        "diff_to_previous",
    ]
    exclude = ["document", "source_text", "source_format"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = PolicyDraftForm
            kwargs["fields"] = ["tenant", "source_text"]
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_exclude(self, request, obj=None):
        return self.exclude if obj is not None else []

    def has_change_permission(self, request, obj=None):
        return obj is None  # versions are immutable: the detail page is read-only

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        created = policy_services.policy_create_draft(
            tenant=form.cleaned_data["tenant"],
            text=form.cleaned_data["source_text"],
            created_by=f"admin:{request.user.get_username()}",
        )
        obj.__dict__.update({k: v for k, v in created.__dict__.items() if not k.startswith("_")})
        obj._state.adding = False

    @admin.display(description="sha256")
    def short_sha(self, obj):
        return obj.sha256[:12]

    @admin.display(description="document (normalised)")
    def document_yaml(self, obj):
        return format_html("<pre>{}</pre>", document_yaml(obj.document))

    @admin.display(description="diff to previous version")
    def diff_to_previous(self, obj):
        previous = (
            Policy.objects.filter(tenant_id=obj.tenant_id, version__lt=obj.version)
            .order_by("-version")
            .first()
        )
        if previous is None:
            return "(first version)"
        diff = document_diff(
            previous.document,
            obj.document,
            old_label=f"v{previous.version}",
            new_label=f"v{obj.version}",
        )
        return format_html("<pre>{}</pre>", diff)

    @admin.action(description="Publish selected version (a retired one is rolled back to)")
    def publish(self, request, queryset):
        for policy in queryset:
            try:
                published = policy_services.policy_publish(
                    tenant=policy.tenant,
                    version=policy.version,
                    published_by=f"admin:{request.user.get_username()}",
                )
                self.message_user(
                    request, f"{policy.tenant.slug}: version {published.version} is published."
                )
            except TollgateError as exc:
                self.message_user(request, f"v{policy.version}: {exc.message}", messages.WARNING)


class VoteInline(ReadOnlyMixin, admin.TabularInline):
    model = ApprovalVote
    fields = ["user", "vote", "comment", "via", "created_at"]
    readonly_fields = fields
    extra = 0


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(UsdFieldsMixin, ReadOnlyMixin, admin.ModelAdmin):
    """Approvers act here with their own account; the service checks their authority."""

    list_display = [
        "id",
        "tenant",
        "state",
        "amount",
        "project",
        "environment",
        "requester",
        "required_approvals",
        "expires_at",
    ]
    list_filter = ["state", "tenant"]
    search_fields = ["id", "decision__id", "requester"]
    list_select_related = ["tenant", "decision__project"]
    inlines = [VoteInline]
    actions = ["approve", "deny", "cancel"]

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="amount (USD)")
    def amount(self, obj):
        return usd_text(obj.decision.amount_micros)

    @admin.display(description="project")
    def project(self, obj):
        return obj.decision.project.slug

    @admin.display(description="environment")
    def environment(self, obj):
        return obj.decision.environment

    def _vote(self, request, queryset, vote: str) -> None:
        for approval in queryset:
            try:
                result = approval_services.approval_vote(
                    approval_id=approval.id,
                    tenant_id=approval.tenant_id,
                    user=request.user,
                    vote=vote,
                    comment=f"via admin by {request.user.get_username()}",
                    via="admin",
                )
            except TollgateError as exc:
                self.message_user(request, f"{approval.id}: {exc.message}", messages.WARNING)
                continue
            note = (
                " The requesting pipeline receives the token when it polls (its gate call "
                f"again, or GET /api/v1/approvals/{approval.id} with its key)."
                if result.token
                else ""
            )
            self.message_user(request, f"{approval.id}: {result.approval.state}.{note}")

    @admin.action(description="Approve selected requests (as me)")
    def approve(self, request, queryset):
        self._vote(request, queryset, "approve")

    @admin.action(description="Deny selected requests (as me)")
    def deny(self, request, queryset):
        self._vote(request, queryset, "deny")

    @admin.action(description="Cancel selected pending requests (releases their holds)")
    def cancel(self, request, queryset):
        for approval in queryset:
            try:
                approval_services.approval_cancel(
                    approval_id=approval.id,
                    tenant_id=approval.tenant_id,
                    reason=f"operator:{request.user.get_username()}: cancelled in the admin",
                )
            except TollgateError as exc:
                self.message_user(request, f"{approval.id}: {exc.message}", messages.WARNING)
                continue
            self.message_user(request, f"{approval.id}: cancelled, hold released.")


@admin.register(ApprovalToken)
class ApprovalTokenAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Issued-token records (claims only; the token itself is never stored)."""

    list_display = ["jti", "tenant", "request", "signing_key", "expires_at", "consumed_at"]
    list_filter = ["consumed_via"]
    search_fields = ["jti", "request__id"]


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Public material only: the encrypted private key is never rendered."""

    list_display = ["kid", "state", "created_at", "retiring_at", "verify_until", "retired_at"]
    list_filter = ["state"]
    fields = [
        "kid",
        "state",
        "public_key",
        "created_at",
        "retiring_at",
        "verify_until",
        "retired_at",
    ]
    readonly_fields = fields


# Budget alerts and reconciliation imports (registered from their own module).


@admin.register(LlmCall)
class LlmCallAdmin(EntitledAdminMixin, admin.ModelAdmin):
    """LLM calls are written by the gateway's commit; the admin only reads them."""

    entitlement = LLM_GATEWAY
    list_display = [
        "created_at",
        "tenant",
        "model",
        "actor",
        "end_user",
        "input_tokens",
        "output_tokens",
        "cost",
        "estimated",
        "needs_reconciliation",
    ]
    list_filter = ["provider", "actor", "estimated", "needs_reconciliation", "surface"]
    search_fields = ["id", "reservation__id", "model", "end_user", "tenant__slug"]
    list_select_related = ["tenant"]
    readonly_fields = [f.name for f in LlmCall._meta.fields]

    @admin.display(description="Cost (USD)")
    def cost(self, obj):
        return usd_text(obj.cost_micros)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


from enforcement import admin_billing  # noqa: E402, F401
