"""The LLM spend gateway: price, reserve, forward, commit (docs/llm-gateway.md)."""
