"""Kubernetes objects and AdmissionReviews built from real manifests with the `kubernetes`
client's models (a manifest the models refuse is not a valid object)."""

from __future__ import annotations

import copy
import json
import uuid
from types import SimpleNamespace

import yaml
from kubernetes.client import ApiClient

from tests.integrations.helpers import FIXTURES

MODELS = {
    "Pod": "V1Pod",
    "Deployment": "V1Deployment",
    "StatefulSet": "V1StatefulSet",
    "DaemonSet": "V1DaemonSet",
    "Job": "V1Job",
    "CronJob": "V1CronJob",
    "ReplicaSet": "V1ReplicaSet",
    "ValidatingWebhookConfiguration": "V1ValidatingWebhookConfiguration",
    "Status": "V1Status",
}
GROUPS = {
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
    "ReplicaSet": ("apps", "v1", "replicasets"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
}


def as_model(data: dict, kind: str | None = None):
    """The `kubernetes` model of ``data`` (deserialised as the client deserialises responses)."""
    client = ApiClient()
    return client.deserialize(SimpleNamespace(data=json.dumps(data)), MODELS[kind or data["kind"]])


def to_wire(model) -> dict:
    return ApiClient().sanitize_for_serialization(model)


def manifest(name: str) -> dict:
    """A fixture manifest, round-tripped through the client's model: what the API server sends."""
    data = yaml.safe_load((FIXTURES / "k8s" / name).read_text(encoding="utf-8"))
    return to_wire(as_model(data))


def scaled(obj: dict, replicas: int) -> dict:
    out = copy.deepcopy(obj)
    out["spec"]["replicas"] = replicas
    return out


def review(
    operation: str,
    obj: dict | None,
    old: dict | None = None,
    *,
    dry_run: bool = False,
    uid: str | None = None,
    user: str = "alice@example.com",
) -> dict:
    """An admission.k8s.io/v1 AdmissionReview as the API server posts it."""
    current = obj or old
    group, version, resource = GROUPS[current["kind"]]
    meta = current.get("metadata") or {}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": current["kind"]},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": current["kind"]},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "operation": operation,
            "userInfo": {"username": user, "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{operation.title()}Options"},
        },
    }
