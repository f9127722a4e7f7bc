"""/scim/v2/ routes (mounted by controlplane.urls). Trailing slashes are optional."""

from django.urls import re_path

from controlplane.identity.api import views

_ID = r"(?P<ident>[^/]+)"

urlpatterns = [
    re_path(
        r"^ServiceProviderConfig/?$", views.ServiceProviderConfigView.as_view(), name="scim-spc"
    ),
    re_path(r"^ResourceTypes/?$", views.ResourceTypeListView.as_view(), name="scim-resource-types"),
    re_path(
        rf"^ResourceTypes/{_ID}/?$",
        views.ResourceTypeDetailView.as_view(),
        name="scim-resource-type",
    ),
    re_path(r"^Schemas/?$", views.SchemaListView.as_view(), name="scim-schemas"),
    re_path(rf"^Schemas/{_ID}/?$", views.SchemaDetailView.as_view(), name="scim-schema"),
    re_path(r"^\.search/?$", views.RootSearchView.as_view(), name="scim-search"),
    re_path(r"^Bulk/?$", views.BulkView.as_view(), name="scim-bulk"),
    re_path(r"^Users/?$", views.UsersView.as_view(), name="scim-users"),
    re_path(r"^Users/\.search/?$", views.UsersSearchView.as_view(), name="scim-users-search"),
    re_path(rf"^Users/{_ID}/?$", views.UserView.as_view(), name="scim-user"),
    re_path(r"^Groups/?$", views.GroupsView.as_view(), name="scim-groups"),
    re_path(r"^Groups/\.search/?$", views.GroupsSearchView.as_view(), name="scim-groups-search"),
    re_path(rf"^Groups/{_ID}/?$", views.GroupView.as_view(), name="scim-group"),
    re_path(r"^.*$", views.NotFoundView.as_view(), name="scim-not-found"),
]
