"""SCIM protocol behaviour over HTTP: auth, errors, lists, attributes, ETags, discovery."""

from __future__ import annotations

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.identity.models import ScimToken, ScimUser
from controlplane.identity.services.tokens import (
    scim_token_issue,
    scim_token_revoke,
    scim_token_rotate,
)
from controlplane.tenancy.services import tenant_set_lifecycle
from tests.identity.scim_helpers import (
    ENTERPRISE,
    GROUP_SCHEMA,
    SCIM,
    USER_SCHEMA,
    ScimClient,
    assert_scim_error,
    patch_op,
    scim_token,
)

pytestmark = pytest.mark.django_db

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


@pytest.fixture
def scim(tenant) -> ScimClient:
    return ScimClient(scim_token(tenant))


def make_user(scim, user_name: str, **attributes) -> dict:
    response = scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": user_name, **attributes})
    assert response.status_code == 201, response.content
    return response.json()


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Basic dXNlcjpwdw==",
        "Bearer tgscim_nope",
        "Bearer tg_aaaaaaaaaaaa_" + "a" * 40,
    ],
)
def test_missing_or_bad_token_is_a_scim_401(api_client, tenant, header):
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)
    for path in ("/scim/v2/Users", "/scim/v2/ServiceProviderConfig", "/scim/v2/nowhere"):
        response = api_client.get(path)
        body = assert_scim_error(response, 401)
        assert "tgscim_" in body["detail"]
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_and_rotated_tokens_stop_working(tenant):
    token_id, plaintext = _issue(tenant)
    _spare_id, spare = _issue(tenant)
    client = ScimClient(plaintext)
    assert client.get("/Users").status_code == 200
    successor, new_plaintext = scim_token_rotate(token=ScimToken.objects.get(pk=token_id))
    assert_scim_error(client.get("/Users"), 401)
    assert ScimClient(new_plaintext).get("/Users").status_code == 200
    scim_token_revoke(token=successor)
    assert "revoked" in assert_scim_error(ScimClient(new_plaintext).get("/Users"), 401)["detail"]
    assert ScimClient(spare).get("/Users").status_code == 200  # other tokens are untouched


def _issue(tenant):
    token, plaintext = scim_token_issue(tenant=tenant, name="idp")
    return token.pk, plaintext


def test_rotation_with_grace_keeps_the_old_token_until_then(tenant):
    token_id, plaintext = _issue(tenant)
    scim_token_rotate(token=ScimToken.objects.get(pk=token_id), grace_seconds=3600)
    assert ScimClient(plaintext).get("/Users").status_code == 200
    ScimToken.objects.filter(pk=token_id).update(expires_at="2000-01-01T00:00:00Z")
    assert "expired" in assert_scim_error(ScimClient(plaintext).get("/Users"), 401)["detail"]


def test_suspended_tenant_keeps_scim_terminated_does_not(tenant, scim):
    tenant_set_lifecycle(tenant=tenant, lifecycle="suspended")
    assert scim.get("/Users").status_code == 200  # offboarding must work for a blocked tenant
    tenant_set_lifecycle(tenant=tenant, lifecycle="terminated")
    assert_scim_error(scim.get("/Users"), 403)


def test_api_keys_do_not_open_scim_and_scim_tokens_do_not_open_the_api(tenant, api_key, api_client):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    assert_scim_error(api_client.get("/scim/v2/Users"), 401)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {scim_token(tenant)}")
    assert api_client.get("/api/v1/tenant").status_code == 401


# --- errors ------------------------------------------------------------------------------------


def test_every_client_error_is_a_scim_error_body(scim):
    assert_scim_error(scim.get("/Users/scu_nope"), 404)
    assert_scim_error(scim.get("/Groups/apg_nope"), 404)
    assert_scim_error(scim.get("/Nope"), 404)
    assert_scim_error(scim.get("/Users/a/b"), 404)
    assert_scim_error(scim.put("/Users", {}), 405)
    assert_scim_error(scim.delete("/ServiceProviderConfig"), 405)
    assert_scim_error(scim.post("/Bulk", {"Operations": []}), 501)
    assert_scim_error(scim.post("/Users", ["not", "an", "object"]), 400, "invalidSyntax")
    assert_scim_error(scim.post("/Users", {"schemas": [USER_SCHEMA]}), 400, "invalidValue")
    assert_scim_error(scim.post("/Users", {"userName": 7}), 400, "invalidValue")
    assert_scim_error(
        scim.post("/Users", {"userName": "x", "active": "maybe"}), 400, "invalidValue"
    )
    assert_scim_error(scim.get("/Users?filter=userName zz 1"), 400, "invalidFilter")
    assert_scim_error(scim.get("/Users?filter=nope eq 1"), 400, "invalidFilter")
    assert_scim_error(scim.get("/Users?startIndex=abc"), 400, "invalidValue")
    assert_scim_error(scim.get("/Users?sortBy=emails"), 400, "invalidValue")
    assert_scim_error(scim.get("/Schemas?filter=id pr"), 403)


def test_malformed_json_and_oversized_bodies(scim):
    raw = scim.client.post("/scim/v2/Users", data="{nope", content_type=SCIM)
    assert_scim_error(raw, 400, "invalidSyntax")
    with override_settings(MAX_REQUEST_BODY_BYTES=100):
        big = scim.post("/Users", {"userName": "x" * 500})
    assert_scim_error(big, 413)


def test_duplicate_user_name_is_409_uniqueness_case_insensitively(scim):
    make_user(scim, "Bjensen@Example.com")
    body = assert_scim_error(
        scim.post("/Users", {"userName": "bjensen@example.COM"}), 409, "uniqueness"
    )
    assert "userName" in body["detail"]
    other = make_user(scim, "other@example.com", externalId="ext-1")
    clash = scim.put(f"/Users/{other['id']}", {"userName": "BJENSEN@example.com"})
    assert_scim_error(clash, 409, "uniqueness")
    assert_scim_error(
        scim.post("/Users", {"userName": "third", "externalId": "ext-1"}), 409, "uniqueness"
    )
    make_user(scim, "fourth", externalId="EXT-1")  # externalId is caseExact


def test_duplicate_group_name_is_409(scim):
    scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "finops"})
    assert_scim_error(scim.post("/Groups", {"displayName": "finops"}), 409, "uniqueness")
    assert_scim_error(scim.post("/Groups", {"members": []}), 400, "invalidValue")


def test_group_members_must_be_users_of_the_tenant(scim):
    body = assert_scim_error(
        scim.post("/Groups", {"displayName": "g", "members": [{"value": "scu_missing"}]}),
        400,
        "invalidValue",
    )
    assert "scu_missing" in body["detail"]
    user = make_user(scim, "u1")
    nested = {"displayName": "g", "members": [{"value": user["id"], "type": "Group"}]}
    assert_scim_error(scim.post("/Groups", nested), 400, "invalidValue")


def test_patch_errors(scim):
    user = make_user(scim, "patchy")
    path = f"/Users/{user['id']}"
    assert_scim_error(scim.patch(path, {"Operations": []}), 400, "invalidSyntax")
    assert_scim_error(scim.patch(path, patch_op({"op": "move", "path": "x"})), 400, "invalidSyntax")
    assert_scim_error(scim.patch(path, patch_op({"op": "remove"})), 400, "noTarget")
    assert_scim_error(
        scim.patch(path, patch_op({"op": "add", "path": "nope", "value": 1})), 400, "invalidPath"
    )
    assert_scim_error(
        scim.patch(path, patch_op({"op": "add", "path": "a[[", "value": 1})), 400, "invalidPath"
    )
    assert_scim_error(
        scim.patch(path, patch_op({"op": "remove", "path": "userName"})), 400, "mutability"
    )
    assert_scim_error(
        scim.patch(path, patch_op({"op": "replace", "path": "groups", "value": []})),
        400,
        "mutability",
    )
    assert_scim_error(
        scim.patch(
            path, patch_op({"op": "replace", "path": 'emails[type co "w"].value', "value": "x"})
        ),
        400,
        "noTarget",
    )
    assert scim.get(path).json() == user  # nothing was half-applied


# --- lists ------------------------------------------------------------------------------------


def test_pagination_and_total_results(scim):
    ids = [make_user(scim, f"user{i:02d}")["id"] for i in range(7)]
    page = scim.get("/Users?startIndex=3&count=2").json()
    assert page["schemas"] == [LIST]
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (7, 3, 2)
    assert [r["id"] for r in page["Resources"]] == ids[2:4]
    assert scim.get("/Users?count=0").json() == {
        "schemas": [LIST],
        "totalResults": 7,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }
    assert scim.get("/Users?startIndex=0&count=-5").json()["itemsPerPage"] == 0
    assert scim.get("/Users?startIndex=99").json()["Resources"] == []
    assert scim.get("/Users?count=100000").json()["itemsPerPage"] == 7


def test_filters_on_the_attributes_idps_use(scim):
    a = make_user(
        scim,
        "alice@example.com",
        externalId="00uA",
        displayName="Alice A",
        emails=[{"value": "Alice@Work.example", "type": "work"}],
        name={"givenName": "Alice"},
        title="CFO",
    )
    b = make_user(scim, "bob@example.com", externalId="00uB", active=False)

    def found(expression):
        response = scim.client.get("/scim/v2/Users", {"filter": expression})
        assert response.status_code == 200, response.content
        return sorted(r["id"] for r in response.json()["Resources"])

    assert found('userName eq "ALICE@example.com"') == [a["id"]]
    assert found('externalId eq "00uA"') == [a["id"]]
    assert found('externalId eq "00ua"') == []  # caseExact
    assert found('displayName eq "alice a"') == [a["id"]]
    assert found('emails.value eq "alice@work.example"') == [a["id"]]
    assert found('emails[type eq "work" and value co "@work"]') == [a["id"]]
    assert found('userName eq "alice@example.com" or userName eq "bob@example.com"') == sorted(
        [a["id"], b["id"]]
    )
    assert found('userName sw "a" and title pr') == [a["id"]]
    assert found("title pr") == [a["id"]]
    assert found("not (title pr)") == [b["id"]]
    assert found('name.givenName eq "ALICE"') == [a["id"]]
    assert found("active eq false") == [b["id"]]
    assert found('title ne "CFO"') == [b["id"]]
    assert found(f'id eq "{a["id"]}"') == [a["id"]]
    assert found('meta.created gt "2000-01-01T00:00:00Z"') == sorted([a["id"], b["id"]])
    assert found('USERNAME EQ "bob@example.com"') == [b["id"]]


def test_group_filters(scim):
    u = make_user(scim, "member")
    g = scim.post("/Groups", {"displayName": "FinOps", "members": [{"value": u["id"]}]}).json()
    scim.post("/Groups", {"displayName": "other"})
    listed = scim.client.get("/scim/v2/Groups", {"filter": 'displayName eq "finops"'}).json()
    assert [r["id"] for r in listed["Resources"]] == [g["id"]]
    by_member = scim.client.get("/scim/v2/Groups", {"filter": f'members.value eq "{u["id"]}"'})
    assert [r["id"] for r in by_member.json()["Resources"]] == [g["id"]]
    by_group = scim.client.get("/scim/v2/Users", {"filter": f'groups.value eq "{g["id"]}"'})
    assert [r["id"] for r in by_group.json()["Resources"]] == [u["id"]]


def test_sorting(scim):
    for name in ("carol", "Alice", "bob"):
        make_user(scim, name)
    names = lambda q: [r["userName"] for r in scim.get(f"/Users?{q}").json()["Resources"]]  # noqa: E731
    assert names("sortBy=userName") == ["Alice", "bob", "carol"]
    assert names("sortBy=userName&sortOrder=descending") == ["carol", "bob", "Alice"]
    assert_scim_error(scim.get("/Users?sortOrder=sideways"), 400, "invalidValue")


def test_attributes_and_excluded_attributes(scim):
    user = make_user(
        scim,
        "attr",
        name={"givenName": "A", "familyName": "B"},
        emails=[{"value": "a@x.example", "type": "work"}],
        **{ENTERPRISE: {"department": "Finance"}},
    )
    only = scim.get(f"/Users/{user['id']}?attributes=userName,name.givenName").json()
    assert only == {
        "schemas": [USER_SCHEMA],
        "id": user["id"],
        "userName": "attr",
        "name": {"givenName": "A"},
    }
    ext = scim.get(f"/Users/{user['id']}?attributes={ENTERPRISE}:department").json()
    assert ext[ENTERPRISE] == {"department": "Finance"} and ext["schemas"] == [
        USER_SCHEMA,
        ENTERPRISE,
    ]
    without = scim.get(f"/Users/{user['id']}?excludedAttributes=emails,meta,id").json()
    assert "emails" not in without and "meta" not in without and without["id"] == user["id"]
    listed = scim.get("/Users?attributes=emails.value").json()["Resources"][0]
    assert listed["emails"] == [{"value": "a@x.example"}]
    searched = scim.post("/Users/.search", {"attributes": ["userName"], "filter": "userName pr"})
    assert searched.json()["Resources"] == [
        {"schemas": [USER_SCHEMA], "id": user["id"], "userName": "attr"}
    ]


def test_root_search_spans_users_and_groups(scim):
    user = make_user(scim, "searcher", externalId="x-1")
    group = scim.post("/Groups", {"displayName": "g", "externalId": "x-2"}).json()
    both = scim.post(
        "/.search",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'externalId sw "x-"',
        },
    ).json()
    assert [r["id"] for r in both["Resources"]] == [user["id"], group["id"]]
    assert both["totalResults"] == 2
    only_users = scim.post("/.search", {"filter": 'userName eq "searcher"'}).json()
    assert [r["id"] for r in only_users["Resources"]] == [user["id"]]
    assert_scim_error(scim.post("/.search", {"filter": "nope pr"}), 400, "invalidFilter")
    page = scim.post("/.search", {"startIndex": 2, "count": 1}).json()
    assert [r["id"] for r in page["Resources"]] == [group["id"]]


# --- representation, case rules, ETags -----------------------------------------------------------


def test_attribute_names_are_case_insensitive_and_unknown_ones_ignored(scim):
    created = scim.post(
        "/Users",
        {
            "SCHEMAS": [USER_SCHEMA],
            "USERNAME": "casey",
            "Name": {"GIVENNAME": "Case"},
            "Emails": [],
            "favouriteColour": "blue",
            "id": "chosen-by-client",
            "groups": [{"value": "apg_x"}],
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["userName"] == "casey" and body["name"] == {"givenName": "Case"}
    assert "emails" not in body and "favouriteColour" not in body and "groups" not in body
    assert body["id"] != "chosen-by-client"
    assert created["Content-Type"] == SCIM
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["location"] == f"http://testserver/scim/v2/Users/{body['id']}"


def test_etags_and_conditional_requests(scim):
    user = make_user(scim, "etag")
    path = f"/Users/{user['id']}"
    first = scim.get(path)
    etag = first["ETag"]
    assert etag == user["meta"]["version"] and etag.startswith('W/"')
    assert scim.get(path, HTTP_IF_NONE_MATCH=etag).status_code == 304
    stale = scim.patch(
        path, patch_op({"op": "replace", "path": "title", "value": "x"}), HTTP_IF_MATCH='W/"old"'
    )
    assert_scim_error(stale, 412)
    ok = scim.patch(
        path, patch_op({"op": "replace", "path": "title", "value": "x"}), HTTP_IF_MATCH=etag
    )
    assert ok.status_code == 200 and ok["ETag"] != etag
    assert_scim_error(scim.delete(path, HTTP_IF_MATCH=etag), 412)
    assert scim.delete(path, HTTP_IF_MATCH=ok["ETag"]).status_code == 204
    # A group membership is part of the user's representation, so it changes the version.
    other = make_user(scim, "etag2")
    before = scim.get(f"/Users/{other['id']}")["ETag"]
    scim.post("/Groups", {"displayName": "g", "members": [{"value": other["id"]}]})
    assert scim.get(f"/Users/{other['id']}")["ETag"] != before


def test_put_replaces_everything_writable(scim):
    user = make_user(scim, "putty", title="T", emails=[{"value": "p@x.example"}], active=True)
    replaced = scim.put(f"/Users/{user['id']}", {"schemas": [USER_SCHEMA], "userName": "putty2"})
    assert replaced.status_code == 200
    body = replaced.json()
    assert body["userName"] == "putty2" and "title" not in body and "emails" not in body
    assert ScimUser.objects.get(pk=user["id"]).user.username.endswith("/putty2")


def test_multiple_primary_values_are_refused(scim):
    two = [{"value": "a@x.example", "primary": True}, {"value": "b@x.example", "primary": True}]
    assert_scim_error(scim.post("/Users", {"userName": "p", "emails": two}), 400, "invalidValue")


# --- discovery ----------------------------------------------------------------------------------


def test_discovery_documents(scim):
    spc = scim.get("/ServiceProviderConfig").json()
    assert spc["patch"] == {"supported": True} and spc["etag"] == {"supported": True}
    assert spc["filter"] == {"supported": True, "maxResults": 200}
    assert spc["bulk"]["supported"] is False
    types = scim.get("/ResourceTypes").json()
    assert types["schemas"] == [LIST] and types["totalResults"] == 2
    assert {t["endpoint"] for t in types["Resources"]} == {"/Users", "/Groups"}
    assert scim.get("/ResourceTypes/User").json()["schemaExtensions"] == [
        {"schema": ENTERPRISE, "required": False}
    ]
    schemas = scim.get("/Schemas").json()
    ids = {s["id"] for s in schemas["Resources"]}
    assert {USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE} <= ids
    assert "urn:ietf:params:scim:schemas:core:2.0:Schema" in ids
    user_schema = scim.get(f"/Schemas/{USER_SCHEMA}").json()
    names = [a["name"] for a in user_schema["attributes"]]
    assert "userName" in names and "password" not in names
    user_name = next(a for a in user_schema["attributes"] if a["name"] == "userName")
    assert (user_name["caseExact"], user_name["uniqueness"], user_name["required"]) == (
        False,
        "server",
        True,
    )
    assert_scim_error(scim.get("/Schemas/urn:nope"), 404)


# --- arbitrary bodies are answered, never a 500 ---------------------------------------------------

_NAMES = st.sampled_from(
    [
        "userName",
        "USERNAME",
        "name",
        "givenName",
        "emails",
        "value",
        "type",
        "primary",
        "active",
        "members",
        "displayName",
        "externalId",
        "id",
        "meta",
        "schemas",
        "groups",
        "title",
        "op",
        "path",
        "Operations",
        ENTERPRISE,
        "manager",
        "x509Certificates",
        "name.givenName",
        'emails[type eq "work"].value',
        'members[value eq "x"]',
        "urn:x:y",
        "",
    ]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | _NAMES
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NAMES, inner, max_size=4),
    max_leaves=12,
)
_OPS = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "remove", "replace", "Replace", "bogus"])},
        optional={"path": _NAMES | st.text(max_size=12), "value": _JSON},
    ),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=_JSON, operations=_OPS, target=st.sampled_from(["user", "group"]))
def test_arbitrary_bodies_never_cause_a_server_error(scim, body, operations, target):
    user = scim.get('/Users?filter=userName eq "fuzz-base"').json()["Resources"]
    user = user[0] if user else make_user(scim, "fuzz-base")
    groups = scim.get('/Groups?filter=externalId eq "fuzz"').json()["Resources"]
    group = (
        groups[0]
        if groups
        else scim.post("/Groups", {"displayName": "fuzz", "externalId": "fuzz"}).json()
    )
    path = f"/Users/{user['id']}" if target == "user" else f"/Groups/{group['id']}"
    collection = "/Users" if target == "user" else "/Groups"
    responses = [
        scim.post(collection, body),
        scim.put(path, body),
        scim.patch(path, body),
        scim.patch(path, patch_op(*operations)),
        scim.post("/.search", body),
    ]
    for response in responses:
        assert response.status_code < 500, (response.status_code, response.content[:500])
        if response.status_code >= 400:
            assert_scim_error(response, response.status_code)


@override_settings(API_KEY_LAST_USED_RESOLUTION_SECONDS=10**6)  # no last-used write in between
def test_list_pages_cost_a_fixed_number_of_queries(scim):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def cost(path: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert scim.get(path).status_code == 200
        return len(queries)

    first = make_user(scim, "q0")
    scim.post("/Groups", {"displayName": "g0", "members": [{"value": first["id"]}]})
    small = (cost("/Users"), cost("/Groups"))
    members = [{"value": make_user(scim, f"q{i}")["id"]} for i in range(1, 25)]
    for index in range(1, 6):
        scim.post("/Groups", {"displayName": f"g{index}", "members": members})
    assert (cost("/Users"), cost("/Groups")) == small
