"""Wrappers that put a Tollgate reservation around OpenAI and Anthropic SDK calls.

Each call reserves first (``POST /api/v1/llm/reservations``: the prompt and ``max_tokens`` bound
the cost), then calls the provider, then commits the provider's ``usage``. When no usage arrives
(the stream was cut or the call failed after it was sent), the whole reservation is committed as
estimated: the money may have been spent, and reconciliation corrects it later. Only an error
status from the provider (it answered and billed nothing) releases the hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tollgate.client import Tollgate
    from tollgate.models import Decision


def _dump(usage: Any) -> dict[str, Any] | None:
    if usage is None:
        return None
    if hasattr(usage, "model_dump"):
        return usage.model_dump(exclude_none=True)
    return dict(usage)


def _provider_refused(exc: BaseException) -> bool:
    """The provider answered with a client error: nothing was generated or billed."""
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in {408, 409}


class _Call:
    """One reserved call: commit once with usage, or as estimated, or release."""

    def __init__(self, tollgate: Tollgate, decision: Decision) -> None:
        self.tollgate = tollgate
        self.decision = decision
        self.done = False

    def commit(self, usage: dict[str, Any] | None) -> None:
        if self.done or self.decision.reservation is None:
            return
        self.done = True
        reservation = self.decision.reservation
        if usage:
            self.tollgate.commit(reservation.id, usage=usage)
        else:
            self.tollgate.commit(reservation.id, actual_cost_usd=reservation.amount_usd)

    def send(self, create: Any, kwargs: dict[str, Any], stream_type: type) -> Any:
        """Call the provider; commit a plain answer's usage, or wrap a stream that commits
        when it ends; a failed call is settled by ``failed``."""
        try:
            result = create(**kwargs)
        except BaseException as exc:
            self.failed(exc)
            raise
        if not kwargs.get("stream"):
            self.commit(_dump(getattr(result, "usage", None)))
            return result
        return stream_type(result, self)

    def failed(self, exc: BaseException) -> None:
        if self.done or self.decision.reservation is None:
            return
        if _provider_refused(exc):
            self.done = True
            self.tollgate.release(self.decision.reservation.id)
        else:
            self.commit(None)


class _Wrapper:
    def __init__(self, tollgate: Tollgate, client: Any, *, project, environment) -> None:
        self._tollgate = tollgate
        self._client = client
        self._project = project
        self._environment = environment

    def __getattr__(self, name: str) -> Any:  # everything not wrapped goes to the real client
        return getattr(self._client, name)

    format = "openai"

    def _reserve(
        self,
        *,
        model: str,
        messages: list,
        max_output_tokens: int | None,
        system: Any = None,
        end_user: str | None = None,
    ) -> _Call:
        decision = self._tollgate.llm_reserve(
            model=model,
            messages=messages,
            system=system,
            max_output_tokens=max_output_tokens,
            format=self.format,
            end_user=end_user,
            project=self._project,
            environment=self._environment,
        )
        return _Call(self._tollgate, decision)


# -- OpenAI ------------------------------------------------------------------------------------


class OpenAIWrapper(_Wrapper):
    @property
    def chat(self) -> _OpenAIChat:
        return _OpenAIChat(self)


class _OpenAIChat:
    def __init__(self, wrapper: OpenAIWrapper) -> None:
        self.completions = _OpenAICompletions(wrapper)


class _OpenAICompletions:
    def __init__(self, wrapper: OpenAIWrapper) -> None:
        self._wrapper = wrapper

    def create(self, **kwargs: Any) -> Any:
        wrapper = self._wrapper
        call = wrapper._reserve(
            model=kwargs["model"],
            messages=list(kwargs.get("messages") or []),
            max_output_tokens=kwargs.get("max_completion_tokens") or kwargs.get("max_tokens"),
            end_user=kwargs.get("user"),
        )
        if kwargs.get("stream"):
            options = dict(kwargs.get("stream_options") or {})
            options["include_usage"] = True  # the final chunk carries the usage to commit
            kwargs["stream_options"] = options
        return call.send(wrapper._client.chat.completions.create, kwargs, _OpenAIStream)


class _OpenAIStream:
    """Iterates the provider's stream; commits its final usage when the stream ends or closes."""

    def __init__(self, stream: Any, call: _Call) -> None:
        self._stream = stream
        self._call = call
        self._usage: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        try:
            for chunk in self._stream:
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    self._usage = _dump(usage)
                yield chunk
        except BaseException as exc:
            if self._usage is None:
                self._call.failed(exc)
            raise
        finally:
            self.close()

    def close(self) -> None:
        if not self._call.done:
            self._call.commit(self._usage)
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> _OpenAIStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- Anthropic ---------------------------------------------------------------------------------


class AnthropicWrapper(_Wrapper):
    format = "anthropic"

    @property
    def messages(self) -> _AnthropicMessages:
        return _AnthropicMessages(self)


class _AnthropicMessages:
    def __init__(self, wrapper: AnthropicWrapper) -> None:
        self._wrapper = wrapper

    def create(self, **kwargs: Any) -> Any:
        wrapper = self._wrapper
        call = wrapper._reserve(
            model=kwargs["model"],
            messages=list(kwargs.get("messages") or []),
            system=kwargs.get("system"),
            max_output_tokens=kwargs.get("max_tokens"),
            end_user=(kwargs.get("metadata") or {}).get("user_id"),
        )
        return call.send(wrapper._client.messages.create, kwargs, _AnthropicStream)


class _AnthropicStream:
    """Anthropic streams usage in two parts: input (and cache) tokens in ``message_start``,
    output tokens in ``message_delta``; the commit carries both."""

    def __init__(self, stream: Any, call: _Call) -> None:
        self._stream = stream
        self._call = call
        self._usage: dict[str, Any] = {}
        self._complete = False

    def __iter__(self) -> Iterator[Any]:
        try:
            for event in self._stream:
                kind = getattr(event, "type", "")
                if kind == "message_start":
                    self._usage.update(_dump(event.message.usage) or {})
                elif kind == "message_delta" and getattr(event, "usage", None) is not None:
                    self._usage.update(_dump(event.usage) or {})
                elif kind == "message_stop":
                    self._complete = True
                yield event
        except BaseException as exc:
            if not self._complete:
                self._call.failed(exc)
            raise
        finally:
            self.close()

    def close(self) -> None:
        if not self._call.done:
            # Without message_stop the output count is partial: charge the estimate instead.
            self._call.commit(self._usage if self._complete else None)
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> _AnthropicStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
