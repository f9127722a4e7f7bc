"""SCIM 2.0 protocol (RFC 7643/7644): schemas, filters, PATCH and representations.

Pure code: no ORM, no request objects. The ORM side (filters as Q objects, reads, writes) lives in
``controlplane.identity.scim_query``, ``selectors`` and ``services``; HTTP in ``identity.api``.
"""
