"""The only write path of the identity app: SCIM tokens, SCIM users and approver groups."""
