"""``POST /api/v1/llm/reservations`` and ``GET /api/v1/prices/{model}``: thin views over the
LLM gateway adapter (``enforcement.llm.gateway``). Commits of LLM reservations go through
``POST /api/v1/reservations/{id}/commit`` with the provider's ``usage``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from billing.catalog import LLM_GATEWAY
from billing.entitlements import EntitledViewMixin
from billing.pricing.lookup import CatalogPrice
from controlplane.core.errors import TollgateError
from controlplane.core.serializers import StrictSerializer
from controlplane.tenancy.api.views_base import CHECKED_IN_VIEW, UNCONFINED, TenantScopedAPIView
from enforcement import scopes
from enforcement.api.views import _idempotency_key
from enforcement.errors import EnforcementErrorCode
from enforcement.llm import estimate
from enforcement.llm.gateway import CallSpec, catalog_price, llm_reserve, output_bound
from enforcement.services.gate import CannotDecide
from enforcement.services.policies import active_policy

USAGE_FORMATS = ["openai", "anthropic"]
PUSD_FIELDS = ("input", "output", "cache_read", "cache_creation", "reasoning")


class LlmReservationRequestSerializer(StrictSerializer):
    model = serializers.CharField(max_length=200)
    format = serializers.ChoiceField(
        choices=USAGE_FORMATS,
        default="openai",
        help_text="Whose `usage` object the commit will carry (cache semantics differ).",
    )
    input_tokens = serializers.IntegerField(min_value=0, max_value=10_000_000, required=False)
    messages = serializers.ListField(
        child=serializers.JSONField(), required=False, max_length=10_000
    )
    system = serializers.JSONField(required=False)
    max_output_tokens = serializers.IntegerField(min_value=1, required=False)
    project = serializers.CharField(max_length=100, required=False)
    environment = serializers.CharField(max_length=100, required=False)
    end_user = serializers.CharField(max_length=256, required=False, allow_blank=True, default="")
    ttl_seconds = serializers.IntegerField(min_value=1, required=False)
    idempotency_key = serializers.CharField(max_length=255, required=False)

    def validate(self, attrs):
        if ("input_tokens" in attrs) == ("messages" in attrs):
            raise serializers.ValidationError(
                {"input_tokens": ["Send exactly one of input_tokens or messages."]}
            )
        return attrs


class LlmCatalogSerializer(serializers.Serializer):
    model = serializers.CharField()
    provider = serializers.CharField()
    catalog_version = serializers.IntegerField()
    catalog_sha256 = serializers.CharField()
    input_tokens = serializers.IntegerField()
    max_output_tokens = serializers.IntegerField()


class LlmReservationResponseSerializer(serializers.Serializer):
    decision_id = serializers.CharField()
    outcome = serializers.CharField()
    reservation = serializers.JSONField(allow_null=True)
    llm = LlmCatalogSerializer()


class PriceSerializer(serializers.Serializer):
    model = serializers.CharField()
    provider = serializers.CharField()
    mode = serializers.CharField()
    catalog_version = serializers.IntegerField()
    catalog_sha256 = serializers.CharField()
    input_cost_per_token_usd = serializers.CharField()
    output_cost_per_token_usd = serializers.CharField()
    cache_read_cost_per_token_usd = serializers.CharField(allow_null=True)
    cache_creation_cost_per_token_usd = serializers.CharField(allow_null=True)
    reasoning_cost_per_token_usd = serializers.CharField(allow_null=True)
    max_input_tokens = serializers.IntegerField(allow_null=True)
    max_output_tokens = serializers.IntegerField(allow_null=True)
    tiers = serializers.JSONField()


def _per_token_usd(pusd: int | None) -> str | None:
    """Pico-dollars per token as an exact decimal USD string ("0.0000025")."""
    if pusd is None:
        return None
    whole, frac = divmod(pusd, 10**12)
    text = f"{whole}.{frac:012d}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def price_body(price: CatalogPrice) -> dict:
    p = price.prices
    return {
        "model": price.model,
        "provider": price.provider,
        "mode": price.mode,
        "catalog_version": price.catalog_version,
        "catalog_sha256": price.catalog_sha256,
        **{f"{name}_cost_per_token_usd": _per_token_usd(p.get(name)) for name in PUSD_FIELDS},
        "max_input_tokens": price.max_input_tokens,
        "max_output_tokens": price.max_output_tokens,
        "tiers": [
            {
                "above_input_tokens": t["above"],
                **{
                    f"{k}_cost_per_token_usd": _per_token_usd(v)
                    for k, v in t.items()
                    if k != "above"
                },
            }
            for t in p.get("tiers") or []
        ],
    }


class LlmReservationView(EntitledViewMixin, TenantScopedAPIView):
    entitlement = LLM_GATEWAY
    required_scopes = {"POST": scopes.LLM_WRITE}
    # The gate refuses a project/environment outside the key's binding (403).
    bound_keys = {"POST": CHECKED_IN_VIEW}
    serializer_class = LlmReservationRequestSerializer

    @extend_schema(
        operation_id="llm_reservations_create",
        request=LlmReservationRequestSerializer,
        responses={201: LlmReservationResponseSerializer, 200: LlmReservationResponseSerializer},
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)
        ],
        description="Reserve the most an LLM call can cost (input tokens given or bounded by "
        "the prompt's UTF-8 bytes; output = max_output_tokens or the model's maximum) at the "
        "catalog prices, frozen into the reservation. Commit with the provider's `usage` "
        "through /api/v1/reservations/{id}/commit.",
    )
    def post(self, request):
        body = LlmReservationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        price = catalog_price(data["model"])
        if "input_tokens" in data:
            input_tokens = data["input_tokens"]
        else:
            input_tokens = estimate.input_bound(
                messages=data["messages"], system=data.get("system")
            )
        spec = CallSpec(
            format=data["format"],
            model=data["model"],
            input_tokens=input_tokens,
            max_output_tokens=output_bound(
                price, data.get("max_output_tokens"), active_policy(self.tenant.id)
            ),
            idempotency_key=_idempotency_key(request, request.data),
            action="llm.reservation",
            project=data.get("project"),
            environment=data.get("environment"),
            end_user=data.get("end_user", ""),
            ttl_seconds=data.get("ttl_seconds"),
        )
        try:
            reserved = llm_reserve(tenant=self.tenant, api_key=request.auth, spec=spec, price=price)
        except CannotDecide as exc:
            raise TollgateError(
                EnforcementErrorCode.GATE_UNAVAILABLE,
                f"The gate could not decide ({exc.cause}); nothing was reserved.",
                status=503,
                headers={"Retry-After": "1"},
            ) from None
        answer = dict(reserved.response)
        answer["llm"] = {
            "model": price.model,
            "provider": price.provider,
            "catalog_version": price.catalog_version,
            "catalog_sha256": price.catalog_sha256,
            "input_tokens": spec.input_tokens,
            "max_output_tokens": spec.max_output_tokens,
        }
        code = status.HTTP_201_CREATED if reserved.created else status.HTTP_200_OK
        return Response(answer, status=code)


class PriceDetailView(TenantScopedAPIView):
    """The catalog entry in use for a model (the same for every tenant)."""

    required_scopes = {"GET": scopes.LLM_WRITE}
    bound_keys = {"GET": UNCONFINED}
    serializer_class = PriceSerializer

    @extend_schema(operation_id="prices_retrieve", responses=PriceSerializer)
    def get(self, request, model):
        return Response(price_body(catalog_price(model)))
