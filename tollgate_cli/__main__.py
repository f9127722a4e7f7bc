"""`tollgate preflight`: gate a Terraform plan from CI.

Exit codes: 0 allowed, 1 denied, 2 approval pending (the approval URL is printed), 3 the call
failed (bad input, auth, Tollgate unreachable). With ``--wait`` a pending approval is polled by
replaying the same call (same idempotency key); once approved, the token it hands over resumes
the preflight, and the exit code is the final answer's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ALLOWED, DENIED, PENDING, FAILED = 0, 1, 2, 3
PATH = "/api/v1/gate/terraform/preflight"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tollgate", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("preflight", help="Gate a Terraform plan before apply.")
    pre.add_argument("--url", default=os.environ.get("TOLLGATE_URL"), help="$TOLLGATE_URL")
    pre.add_argument(
        "--api-key", default=os.environ.get("TOLLGATE_API_KEY"), help="$TOLLGATE_API_KEY"
    )
    pre.add_argument(
        "--run-id", required=True, help="CI run id (with --stage: the idempotency key)"
    )
    pre.add_argument("--stage", default="apply")
    pre.add_argument("--project")
    pre.add_argument("--environment")
    cost = pre.add_mutually_exclusive_group(required=True)
    cost.add_argument("--infracost", type=Path, help="infracost breakdown --format json output")
    cost.add_argument("--monthly-delta", help="monthly cost delta in USD, e.g. 812.50")
    pre.add_argument("--hourly-delta", help="hourly delta in USD (with --monthly-delta)")
    pre.add_argument(
        "--requester",
        default=os.environ.get("GITHUB_ACTOR") or os.environ.get("GITLAB_USER_LOGIN") or "",
    )
    pre.add_argument(
        "--approval-token",
        default=os.environ.get("TOLLGATE_APPROVAL_TOKEN"),
        help="resume an approved request ($TOLLGATE_APPROVAL_TOKEN)",
    )
    pre.add_argument("--expected-fingerprint", help="fail (exit 3) if the plan changed")
    pre.add_argument("--wait", action="store_true", help="wait for a pending approval")
    pre.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits")
    pre.add_argument("--poll-interval", type=float, default=15.0)
    pre.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    return parser


def _body(args) -> dict:
    body: dict = {"run_id": args.run_id, "stage": args.stage}
    for name in ("project", "environment", "requester", "approval_token", "expected_fingerprint"):
        value = getattr(args, name)
        if value:
            body[name] = value
    if args.infracost is not None:
        body["infracost"] = json.loads(args.infracost.read_text(encoding="utf-8"))
    else:
        body["monthly_delta_usd"] = args.monthly_delta
        if args.hourly_delta:
            body["hourly_delta_usd"] = args.hourly_delta
    return body


def _say(out, answer: dict) -> None:
    line = f"tollgate: {answer.get('outcome')} ({answer.get('reason_code')})"
    if answer.get("amount_usd"):
        line += f" for {answer['amount_usd']} USD"
    print(line, file=out)
    if answer.get("message"):
        print(f"  {answer['message']}", file=out)
    if answer.get("remediation") and answer.get("outcome") != "ALLOW":
        print(f"  remediation: {answer['remediation']}", file=out)


def _exit_code(answer: dict) -> int:
    outcome = answer.get("outcome")
    if outcome in ("ALLOW", "ALLOW_WITH_CREDITS"):
        return ALLOWED
    if outcome == "REQUIRE_APPROVAL":
        return PENDING
    return DENIED


def preflight(
    args,
    client: httpx.Client,
    out=None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    out = out or sys.stdout
    body = _body(args)
    deadline = clock() + args.timeout
    while True:
        response = client.post(PATH, json=body)
        if response.status_code >= 400:
            problem = response.json() if "json" in response.headers.get("content-type", "") else {}
            print(
                f"tollgate: HTTP {response.status_code} {problem.get('code', '')}: "
                f"{problem.get('detail', response.text[:300])}",
                file=out,
            )
            if problem.get("remediation"):
                print(f"  remediation: {problem['remediation']}", file=out)
            return FAILED
        answer = response.json()
        if args.json:
            print(json.dumps(answer, indent=2), file=out)
        approval = answer.get("approval") or {}
        if answer.get("outcome") != "REQUIRE_APPROVAL":
            _say(out, answer)
            return _exit_code(answer)
        if approval.get("token"):  # approved: resume with the token, bound to this plan
            print(f"tollgate: approval {approval['id']} granted; resuming", file=out)
            body = {
                **body,
                "approval_token": approval["token"],
                "expected_fingerprint": answer["fingerprint"],
            }
            continue
        status = approval.get("status")
        if status not in ("pending", "approved"):
            _say(out, answer)
            print(f"tollgate: approval {approval.get('id')} is {status}", file=out)
            return DENIED
        if not args.wait or clock() >= deadline:
            _say(out, answer)
            print(f"tollgate: approval pending: {approval.get('url')}", file=out)
            print(
                "  re-run this step with --wait (or with TOLLGATE_APPROVAL_TOKEN) once approved",
                file=out,
            )
            return PENDING
        sleep(min(args.poll_interval, max(0.0, deadline - clock())))


def main(argv: list[str] | None = None, *, transport: httpx.BaseTransport | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.url or not args.api_key:
        print("tollgate: set --url/--api-key (or TOLLGATE_URL/TOLLGATE_API_KEY)", file=sys.stderr)
        return FAILED
    headers = {"Authorization": f"Bearer {args.api_key}", "User-Agent": "tollgate-cli/1"}
    try:
        with httpx.Client(
            base_url=args.url, headers=headers, timeout=30.0, transport=transport
        ) as client:
            return preflight(args, client)
    except (httpx.HTTPError, OSError, ValueError) as exc:
        print(f"tollgate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
