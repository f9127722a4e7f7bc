"""Operator admin for billing: plans (read-only: the catalog is code), each tenant's plan
(changed through the service), subscriptions, payment events and dunning (read-only, with
the operator actions the services offer)."""

from django.contrib import admin, messages

from billing.models import (
    DunningAttempt,
    DunningCampaign,
    Invoice,
    ModelPrice,
    PaymentEvent,
    Plan,
    PriceCatalog,
    PriceCatalogFetch,
    Subscription,
    TenantPlan,
)
from billing.services.plans import tenant_plan_set
from billing.services.prices import price_catalog_refresh
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


@admin.register(PriceCatalog)
class PriceCatalogAdmin(ReadOnly, admin.ModelAdmin):
    """Catalog versions are immutable; "Refresh now" runs the scheduled refresh at once."""

    list_display = ["version", "model_count", "source", "forced", "created_at", "sha256"]
    actions = ["refresh_now"]

    @admin.action(description="Refresh the price catalog now (PRICE_CATALOG_SOURCE)")
    def refresh_now(self, request, queryset):
        result = price_catalog_refresh()
        level = messages.SUCCESS if result.outcome in ("imported", "unchanged") else messages.ERROR
        self.message_user(request, f"{result.outcome}: {result.detail}", level)


@admin.register(ModelPrice)
class ModelPriceAdmin(ReadOnly, admin.ModelAdmin):
    """Per-token prices in pico-dollars (1e-12 USD; the same number is micro-dollars per
    million tokens)."""

    list_display = [
        "model",
        "provider",
        "mode",
        "catalog",
        "input_pusd",
        "output_pusd",
        "cache_read_pusd",
        "cache_creation_pusd",
        "max_output_tokens",
    ]
    list_filter = ["provider", "mode"]
    search_fields = ["model"]
    list_select_related = ["catalog"]

    def get_queryset(self, request):
        # Only the catalog in use: older versions stay for reservations that froze them.
        latest = PriceCatalog.objects.order_by("-version").values("pk")[:1]
        return super().get_queryset(request).filter(catalog__in=latest)


@admin.register(PriceCatalogFetch)
class PriceCatalogFetchAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["created_at", "outcome", "source", "attempts", "detail", "catalog"]
    list_filter = ["outcome"]
