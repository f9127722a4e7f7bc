"""Monthly cost of a Kubernetes workload from its pod template (pure: no ORM, no I/O).

requests (CPU, memory, GPU) of one pod x replicas x the policy's unit prices x hours per month.
A pod's request per resource is the larger of its containers' sum and its largest init
container (how the scheduler counts it), plus the pod overhead; a container without a request
but with a limit requests its limit (the API server defaults it so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu", "gpu.intel.com/i915")
GIB = Decimal(1024**3)
_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$")
ANNOTATION_PROJECT = "tollgate.io/project"
ANNOTATION_ENVIRONMENT = "tollgate.io/environment"
ANNOTATION_MONTHLY = "tollgate.io/monthly-cost-usd"
ANNOTATION_TOKEN = "tollgate.io/approval-token"  # noqa: S105 - an annotation name
WORKLOAD_KINDS = (
    "Pod",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicationController",
)
MAX_QUANTITY = Decimal(10**15)  # far above any node; keeps the arithmetic bounded


class ManifestError(ValueError):
    """The object cannot be costed; ``field`` is the path of the first problem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_quantity(value: Any, field: str = "quantity") -> Decimal:
    """A Kubernetes resource quantity ("500m", "1.5Gi", "2e3", 4) as an exact Decimal."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ManifestError(field, "Expected a quantity such as 500m or 1Gi.")
    match = _QUANTITY.fullmatch(str(value).strip())
    if match is None:
        raise ManifestError(field, f"Not a quantity: {str(value)[:40]!r}.")
    number, exponent, suffix = match.groups()
    try:
        amount = Decimal(number)
        if exponent:
            amount = amount * (Decimal(10) ** int(exponent[1:]))
    except (InvalidOperation, ValueError) as exc:
        raise ManifestError(field, f"Not a quantity: {str(value)[:40]!r}.") from exc
    amount *= _SUFFIXES[suffix or ""]
    if amount < 0 or amount > MAX_QUANTITY:
        raise ManifestError(field, "Out of range.")
    return amount


@dataclass(frozen=True)
class UnitPrices:
    cpu_core_hour: Decimal
    memory_gib_hour: Decimal
    gpu_hour: Decimal
    hours_per_month: int

    @classmethod
    def from_policy(cls, document: dict) -> UnitPrices:
        prices = (document.get("unit_prices") or {}).get("kubernetes") or {}
        return cls(
            cpu_core_hour=Decimal(prices.get("cpu_core_hour_usd", "0")),
            memory_gib_hour=Decimal(prices.get("memory_gib_hour_usd", "0")),
            gpu_hour=Decimal(prices.get("gpu_hour_usd", "0")),
            hours_per_month=int(prices.get("hours_per_month", 730)),
        )


@dataclass(frozen=True)
class Requests:
    cpu: Decimal = Decimal(0)  # cores
    memory: Decimal = Decimal(0)  # bytes
    gpu: Decimal = Decimal(0)

    def __add__(self, other: Requests) -> Requests:
        return Requests(self.cpu + other.cpu, self.memory + other.memory, self.gpu + other.gpu)

    def max(self, other: Requests) -> Requests:
        return Requests(
            max(self.cpu, other.cpu), max(self.memory, other.memory), max(self.gpu, other.gpu)
        )

    def times(self, n: int) -> Requests:
        return Requests(self.cpu * n, self.memory * n, self.gpu * n)


@dataclass(frozen=True)
class Workload:
    kind: str
    pods: int  # replicas (DaemonSet: the policy's node count)
    per_pod: Requests
    monthly_micros: int
    overridden: bool  # the monthly cost came from the tollgate.io/monthly-cost-usd annotation

    @property
    def total(self) -> Requests:
        return self.per_pod.times(self.pods)


def _container_requests(container: Any, path: str) -> Requests:
    if not isinstance(container, dict):
        raise ManifestError(path, "Expected a container object.")
    resources = container.get("resources") or {}
    if not isinstance(resources, dict):
        raise ManifestError(f"{path}.resources", "Expected an object.")
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    if not isinstance(requests, dict) or not isinstance(limits, dict):
        raise ManifestError(f"{path}.resources", "requests and limits must be objects.")

    def amount(name: str) -> Decimal:
        value = requests.get(name, limits.get(name))
        where = f"{path}.resources.requests.{name}"
        return Decimal(0) if value is None else parse_quantity(value, where)

    gpu = sum((amount(name) for name in GPU_RESOURCES), Decimal(0))
    return Requests(cpu=amount("cpu"), memory=amount("memory"), gpu=gpu)


def pod_requests(spec: Any, path: str) -> Requests:
    """What the scheduler reserves for one pod of this spec."""
    if not isinstance(spec, dict):
        raise ManifestError(path, "Expected a pod spec.")
    containers = spec.get("containers") or []
    init = spec.get("initContainers") or []
    if not isinstance(containers, list) or not isinstance(init, list):
        raise ManifestError(path, "containers and initContainers must be lists.")
    total = Requests()
    for index, container in enumerate(containers):
        total = total + _container_requests(container, f"{path}.containers[{index}]")
    for index, container in enumerate(init):
        total = total.max(_container_requests(container, f"{path}.initContainers[{index}]"))
    overhead = spec.get("overhead") or {}
    if isinstance(overhead, dict) and overhead:
        total = total + _container_requests(
            {"resources": {"requests": overhead}}, f"{path}.overhead"
        )
    return total


def _count(value: Any, field: str, default: int = 1) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise ManifestError(field, "Expected a whole number between 0 and 1000000.")
    return value


def _template(obj: dict, daemonset_nodes: int) -> tuple[Any, int, str]:
    """(pod spec, pods, path of the spec) for a workload object."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if not isinstance(spec, dict):
        raise ManifestError("spec", "Expected an object.")
    if kind == "Pod":
        return spec, 1, "spec"
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "ReplicationController"):
        pods = _count(spec.get("replicas"), "spec.replicas")
        return (spec.get("template") or {}).get("spec"), pods, "spec.template.spec"
    if kind == "DaemonSet":
        return (spec.get("template") or {}).get("spec"), daemonset_nodes, "spec.template.spec"
    if kind == "Job":
        pods = _count(spec.get("parallelism"), "spec.parallelism")
        return (spec.get("template") or {}).get("spec"), pods, "spec.template.spec"
    if kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        pods = _count(job.get("parallelism"), "spec.jobTemplate.spec.parallelism")
        return (job.get("template") or {}).get("spec"), pods, "spec.jobTemplate.spec.template.spec"
    raise ManifestError("kind", f"{kind!r} is not a workload Tollgate costs.")


def _micros(amount: Decimal) -> int:
    return int((amount * 1_000_000).to_integral_value(rounding=ROUND_CEILING))


def annotations(obj: dict) -> dict[str, str]:
    value = (obj.get("metadata") or {}).get("annotations") or {}
    return value if isinstance(value, dict) else {}


def workload_cost(obj: Any, prices: UnitPrices, *, daemonset_nodes: int) -> Workload:
    """The monthly cost of the object in micro-dollars (the annotation overrides the estimate)."""
    from controlplane.core.money import MoneyError, parse_usd

    if not isinstance(obj, dict):
        raise ManifestError("object", "Expected a Kubernetes object.")
    spec, pods, path = _template(obj, daemonset_nodes)
    per_pod = pod_requests(spec, path)
    override = annotations(obj).get(ANNOTATION_MONTHLY)
    if override is not None:
        try:
            monthly = parse_usd(str(override))
        except MoneyError as exc:
            raise ManifestError(f"metadata.annotations.{ANNOTATION_MONTHLY}", str(exc)) from exc
        return Workload(obj["kind"], pods, per_pod, monthly, overridden=True)
    total = per_pod.times(pods)
    hourly = (
        total.cpu * prices.cpu_core_hour
        + total.memory / GIB * prices.memory_gib_hour
        + total.gpu * prices.gpu_hour
    )
    return Workload(
        obj["kind"], pods, per_pod, _micros(hourly * prices.hours_per_month), overridden=False
    )
