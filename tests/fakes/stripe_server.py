"""A local server speaking Stripe's API wire format for what dunning calls.

- ``POST /v1/invoices/{id}/pay`` -> 200 with the invoice object (``status: paid``) when the id is
  in ``payable``, else 402 with a ``card_error`` (``card_declined``) error object.
- ``DELETE /v1/subscriptions/{id}`` -> 200 with the subscription object, ``status: canceled``.
Bodies and errors are shaped as Stripe documents them, so the real ``stripe`` client parses them.
"""

from __future__ import annotations

import threading
import time

from tests.fakes.json_http import JsonHandler, LocalServer


class FakeStripe(LocalServer):
    def __init__(self) -> None:
        self.payable: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(JsonHandler):
            extra_headers = {"Request-Id": "req_fake"}

            def _record(self):
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                with fake._lock:
                    fake.requests.append((self.command, self.path))

            def do_POST(self):
                self._record()
                parts = self.path.strip("/").split("/")
                if len(parts) == 4 and parts[:2] == ["v1", "invoices"] and parts[3] == "pay":
                    invoice = parts[2]
                    if invoice in fake.payable:
                        return self.send_json(200, _invoice(invoice, "paid"))
                    return self.send_json(
                        402,
                        {
                            "error": {
                                "code": "card_declined",
                                "decline_code": "insufficient_funds",
                                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                                "message": "Your card has insufficient funds.",
                                "type": "card_error",
                            }
                        },
                    )
                return self._not_found()

            def do_DELETE(self):
                self._record()
                parts = self.path.strip("/").split("/")
                if len(parts) == 3 and parts[:2] == ["v1", "subscriptions"]:
                    return self.send_json(
                        200,
                        {
                            "id": parts[2],
                            "object": "subscription",
                            "status": "canceled",
                            "canceled_at": int(time.time()),
                            "customer": "cus_test",
                            "livemode": False,
                        },
                    )
                return self._not_found()

            def _not_found(self):
                return self.send_json(
                    404,
                    {
                        "error": {
                            "message": f"Unrecognized request URL ({self.command}: {self.path}).",
                            "type": "invalid_request_error",
                        }
                    },
                )

        self.serve(Handler)


def _invoice(invoice_id: str, status: str) -> dict:
    return {
        "id": invoice_id,
        "object": "invoice",
        "status": status,
        "amount_due": 4900,
        "amount_paid": 4900 if status == "paid" else 0,
        "currency": "usd",
        "customer": "cus_test",
        "livemode": False,
    }
