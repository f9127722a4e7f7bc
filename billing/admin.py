"""Operator admin for billing: plans (read-only: the catalog is code), each tenant's plan
(changed through the service), subscriptions, payment events and dunning (read-only, with
the operator actions the services offer)."""

from django.contrib import admin, messages

from billing.models import (
    DunningAttempt,
    DunningCampaign,
    Invoice,
    PaymentEvent,
    Plan,
    Subscription,
    TenantPlan,
)
from billing.services.plans import tenant_plan_set
from billing.services.subscriptions import subscription_reactivate
from controlplane.core.admin import UsdFieldsMixin, usd_display
from controlplane.core.errors import TollgateError


class ReadOnly:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Plan)
class PlanAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["code", "name", "rank", "features", "limits"]
    search_fields = ["code", "name"]


@admin.register(TenantPlan)
class TenantPlanAdmin(admin.ModelAdmin):
    """Putting a tenant on a plan goes through ``tenant_plan_set`` (ledgered)."""

    list_display = ["tenant", "plan", "updated_at"]
    list_select_related = ["tenant", "plan"]
    fields = ["tenant", "plan"]

    def get_readonly_fields(self, request, obj=None):
        return ["tenant"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        tenant_plan_set(tenant=obj.tenant, plan=obj.plan)


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnly, admin.ModelAdmin):
    list_display = [
        "tenant",
        "state",
        "provider",
        "provider_customer_id",
        "grace_until",
        "state_changed_at",
    ]
    list_filter = ["state", "provider"]
    search_fields = ["tenant__slug", "provider_customer_id", "provider_subscription_id"]
    list_select_related = ["tenant"]
    actions = ["reactivate"]

    @admin.action(description="Reactivate selected subscriptions (canceled or suspended)")
    def reactivate(self, request, queryset):
        for subscription in queryset:
            try:
                subscription_reactivate(
                    subscription_id=subscription.pk,
                    actor=f"admin:{request.user.get_username()}",
                    reason="operator reactivation",
                )
            except TollgateError as exc:
                self.message_user(request, f"{subscription.pk}: {exc.message}", messages.ERROR)


@admin.register(Invoice)
class InvoiceAdmin(UsdFieldsMixin, ReadOnly, admin.ModelAdmin):
    list_display = ["provider_invoice_id", "tenant", "status", "amount_due", "status_at"]
    list_filter = ["status", "provider"]
    search_fields = ["provider_invoice_id", "tenant__slug"]

    amount_due = usd_display("amount_due_micros", "amount due (USD)")


@admin.register(PaymentEvent)
class PaymentEventAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["received_at", "provider", "event_type", "outcome", "tenant", "event_id"]
    list_filter = ["provider", "outcome", "event_type"]
    search_fields = ["event_id", "tenant__slug"]


class DunningAttemptInline(ReadOnly, admin.TabularInline):
    model = DunningAttempt
    fields = ["number", "state", "scheduled_for", "finished_at", "detail"]
    readonly_fields = fields
    extra = 0


@admin.register(DunningCampaign)
class DunningCampaignAdmin(ReadOnly, admin.ModelAdmin):
    list_display = [
        "id",
        "tenant",
        "state",
        "stage",
        "attempts_made",
        "max_attempts",
        "next_action_at",
    ]
    list_filter = ["state", "stage"]
    search_fields = ["id", "tenant__slug", "invoice__provider_invoice_id"]
    inlines = [DunningAttemptInline]
