from controlplane.identity.models.groups import ApproverGroup
from controlplane.identity.models.scim import ScimToken, ScimUser, ScimUserEmail
from controlplane.identity.models.sessions import UserSession

__all__ = ["ApproverGroup", "ScimToken", "ScimUser", "ScimUserEmail", "UserSession"]
