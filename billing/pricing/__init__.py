"""Model price catalog: parse LiteLLM-format JSON, price LLM usage, refresh on a schedule."""
