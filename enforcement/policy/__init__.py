"""Policy as code: versioned YAML/JSON documents with CEL rules (see docs/policy-reference.md)."""
