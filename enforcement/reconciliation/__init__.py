"""Bill parsers (FOCUS CSV, LLM provider usage JSON) and the matching of bill lines to
committed reservations. Parsers and matching are pure; ``services.reconciliation_imports``
does the reads and writes."""
