"""SCIM filters: the parser, the ORM translation against the in-memory meaning (differential),
and arbitrary filter strings (never a 500, never another tenant's rows)."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.identity import scim_query
from controlplane.identity.api.resources import GROUPS, USERS
from controlplane.identity.scim import filters as f
from controlplane.identity.scim.documents import read_resource
from controlplane.identity.scim.errors import ScimError
from controlplane.identity.scim.evaluate import bind_filter, matches
from controlplane.identity.scim.schema import USER
from controlplane.identity.services.users import scim_user_create
from tests import factories
from tests.identity.scim_helpers import ScimClient, scim_token

# --- parser -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "bjensen"', f.Compare(f.AttrRef(None, "userName"), "eq", "bjensen")),
        (
            'name.familyName co "O\'Malley"',
            f.Compare(f.AttrRef(None, "name", "familyName"), "co", "O'Malley"),
        ),
        ('userName Eq "a\\"b"', f.Compare(f.AttrRef(None, "userName"), "eq", 'a"b')),
        ("title pr", f.Present(f.AttrRef(None, "title"))),
        (
            "a eq 1 or b eq 2 and c eq 3",
            f.Or(
                f.Compare(f.AttrRef(None, "a"), "eq", 1),
                f.And(
                    f.Compare(f.AttrRef(None, "b"), "eq", 2),
                    f.Compare(f.AttrRef(None, "c"), "eq", 3),
                ),
            ),
        ),
        (
            "not (a pr) and (b eq true)",
            f.And(
                f.Not(f.Present(f.AttrRef(None, "a"))), f.Compare(f.AttrRef(None, "b"), "eq", True)
            ),
        ),
        (
            'emails[type eq "work" and value co "@x"]',
            f.ValuePath(
                f.AttrRef(None, "emails"),
                f.And(
                    f.Compare(f.AttrRef(None, "type"), "eq", "work"),
                    f.Compare(f.AttrRef(None, "value"), "co", "@x"),
                ),
            ),
        ),
        (
            'urn:ietf:params:scim:schemas:core:2.0:User:name.givenName sw "J"',
            f.Compare(
                f.AttrRef("urn:ietf:params:scim:schemas:core:2.0:User", "name", "givenName"),
                "sw",
                "J",
            ),
        ),
        (
            'meta.lastModified gt "2011-05-13T04:42:34Z"',
            f.Compare(f.AttrRef(None, "meta", "lastModified"), "gt", "2011-05-13T04:42:34Z"),
        ),
        ("x eq null", f.Compare(f.AttrRef(None, "x"), "eq", None)),
    ],
)
def test_parses_rfc_examples(text, expected):
    assert f.parse_filter(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "userName",
        "userName eq",
        'userName eq "x" and',
        "(",
        'a eq "x")',
        "a zz 1",
        'a eq "unterminated',
        "a[b[c eq 1]]",
        "a eq 1e999",
        "a.b.c eq 1",
        'emails[type eq "w"].value eq "x"',
        "(" * 40 + "a pr" + ")" * 40,
        "a eq 1" + " and a eq 1" * 3000,
    ],
)
def test_refuses_malformed_filters(text):
    with pytest.raises(ScimError) as error:
        f.parse_filter(text)
    assert error.value.status == 400 and error.value.scim_type == "invalidFilter"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("members", f.PatchPath(f.AttrRef(None, "members"))),
        ("name.familyName", f.PatchPath(f.AttrRef(None, "name", "familyName"))),
        (
            'addresses[type eq "work"]',
            f.PatchPath(
                f.AttrRef(None, "addresses"), f.Compare(f.AttrRef(None, "type"), "eq", "work")
            ),
        ),
        (
            'members[value eq "2819c223"].displayName',
            f.PatchPath(
                f.AttrRef(None, "members"),
                f.Compare(f.AttrRef(None, "value"), "eq", "2819c223"),
                "displayName",
            ),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            f.PatchPath(
                f.AttrRef(
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "employeeNumber"
                )
            ),
        ),
    ],
)
def test_parses_patch_paths(text, expected):
    assert f.parse_path(text) == expected


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("active gt true", "boolean"),
        ("nope eq 1", "not an attribute"),
        ('name eq "x"', "complex"),
        ("userName eq 1", "string"),
        ('meta.created co "2020"', "date-time"),
        ('meta.created gt "yesterday"', "date-time"),
        ('emails[nope eq "x"]', "sub-attribute"),
        ('userName[value eq "x"]', "not multi-valued"),
        ('x509Certificates.value gt "AA=="', "binary"),
    ],
)
def test_refuses_filters_the_schema_does_not_allow(text, detail):
    with pytest.raises(ScimError) as error:
        bind_filter(USER, text)
    assert error.value.scim_type == "invalidFilter" and detail in error.value.detail


# --- the ORM means what the document means (differential) ---------------------------------------

_WORDS = ["alice", "Alice", "bob", "al", "ice", "work", "home", "x", ""]
_TEXT = st.sampled_from(_WORDS) | st.text(alphabet=string.ascii_letters + "@._-", max_size=6)
_STRING_ATTRS = [
    "userName",
    "externalId",
    "displayName",
    "title",
    "name.givenName",
    "emails.value",
    "emails.type",
    "emails",
    f"{USER.extensions[0].id}:department",
]


def _leaf():
    compare = st.builds(
        lambda attr, op, value: f"{attr} {op} {_quote(value)}",
        st.sampled_from(_STRING_ATTRS),
        st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]),
        _TEXT,
    )
    present = st.builds(
        lambda attr: f"{attr} pr", st.sampled_from([*_STRING_ATTRS, "active", "name"])
    )
    booleans = st.builds(
        lambda op, value: f"active {op} {value}",
        st.sampled_from(["eq", "ne"]),
        st.sampled_from(["true", "false"]),
    )
    value_path = st.builds(
        lambda sub, op, value: f"emails[{sub} {op} {_quote(value)}]",
        st.sampled_from(["type", "value", "display"]),
        st.sampled_from(["eq", "ne", "co", "sw"]),
        _TEXT,
    )
    primary = st.sampled_from(
        ["emails.primary eq true", "emails[primary eq false]", "emails.primary pr"]
    )
    return compare | present | booleans | value_path | primary


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_FILTERS = st.recursive(
    _leaf(),
    lambda inner: (
        st.builds(
            lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from(["and", "or"]), inner
        )
        | st.builds(lambda a: f"not ({a})", inner)
    ),
    max_leaves=6,
)

_PEOPLE = [
    {
        "userName": "alice",
        "externalId": "Alice",
        "displayName": "Al Ice",
        "title": "work",
        "name": {"givenName": "Alice"},
        "active": True,
        "emails": [
            {"value": "alice@work", "type": "work", "primary": True},
            {"value": "a@home", "type": "home"},
        ],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "x"},
    },
    {
        "userName": "Bob",
        "externalId": "bob",
        "active": False,
        "emails": [{"value": "bob@x", "primary": False}],
    },
    {
        "userName": "al",
        "displayName": "",
        "name": {"familyName": "Ice"},
        "emails": [{"type": "work"}],
    },
    {"userName": "ice-x", "title": "", "emails": [{"value": "", "display": "ICE"}]},
    {"userName": "_x.@"},
]


@pytest.fixture
def people(db):
    tenant = factories.make_tenant("diff")
    other = factories.make_tenant("diff-other")
    for doc in _PEOPLE:
        scim_user_create(tenant=tenant, doc=read_resource(USER, doc))
        scim_user_create(tenant=other, doc=read_resource(USER, doc))  # next door: never shown
    documents = USERS.render(tenant.id, list(USERS.rows(tenant.id)), "")
    return tenant, documents


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=_FILTERS)
def test_orm_filter_equals_in_memory_meaning(people, text):
    tenant, documents = people
    bound = bind_filter(USER, text)
    expected = sorted(d["id"] for d in documents if matches(d, bound))
    rows = USERS.rows(tenant.id).filter(scim_query.condition(USER, bound))
    assert sorted(rows.values_list("id", flat=True)) == expected, text


# --- arbitrary input over HTTP ------------------------------------------------------------------

_NOISE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60
) | st.builds(
    lambda parts: " ".join(parts),
    st.lists(
        st.sampled_from(
            [
                "userName",
                "emails",
                "members",
                "displayName",
                "externalId",
                "meta.created",
                "groups.value",
                "eq",
                "ne",
                "co",
                "sw",
                "pr",
                "gt",
                "and",
                "or",
                "not",
                "(",
                ")",
                "[",
                "]",
                '"x"',
                "true",
                "null",
                "1",
                "1.5",
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                ".value",
                '"',
                r'"\u0000"',
                '"' + "x" * 3000 + '"',
            ],
        ),
        max_size=10,
    ),
)


@pytest.fixture
def two_tenants(db):
    mine = factories.make_tenant("mine")
    theirs = factories.make_tenant("theirs")
    scim_user_create(
        tenant=theirs, doc={"userName": "secret@theirs", "externalId": "t1", "title": "x"}
    )
    scim = ScimClient(scim_token(mine))
    theirs_scim = ScimClient(scim_token(theirs))
    group = theirs_scim.post("/Groups", {"displayName": "theirs-group", "externalId": "t2"}).json()
    return scim, group


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=_NOISE)
def test_any_filter_string_is_answered_and_never_crosses_tenants(two_tenants, text):
    scim, their_group = two_tenants
    for path in ("/scim/v2/Users", "/scim/v2/Groups"):
        response = scim.client.get(path, {"filter": text})
        assert response.status_code in (200, 400), (
            text,
            response.status_code,
            response.content[:300],
        )
        body = response.json()
        if response.status_code == 200:
            assert body["totalResults"] == 0 and body["Resources"] == [], text
        else:
            assert body["scimType"] == "invalidFilter", body
    searched = scim.post("/.search", {"filter": text})
    assert searched.status_code in (200, 400)
    if searched.status_code == 200:
        assert searched.json()["totalResults"] == 0
    assert their_group["id"] not in searched.content.decode()


def test_nul_characters_are_client_errors(two_tenants):
    scim, _ = two_tenants
    for text in (
        'userName eq "a\\u0000b"',
        'emails[value eq "\\u0000"]',
        "userName\u0000 pr",
        'title eq "\u0000"',
    ):
        searched = scim.post("/.search", {"filter": text})
        assert searched.status_code == 400 and searched.json()["scimType"] == "invalidFilter"
    raw = scim.client.get("/scim/v2/Users?filter=userName%20eq%20%22%00%22")
    assert raw.status_code == 400 and raw.json()["schemas"] == [
        "urn:ietf:params:scim:api:messages:2.0:Error"
    ]


def test_filter_compiles_to_orm_conditions_not_sql_strings():
    condition = scim_query.condition(USER, bind_filter(USER, 'userName eq "x" or emails pr'))
    assert type(condition).__name__ == "Q"
    assert scim_query.condition(GROUPS.schema, bind_filter(GROUPS.schema, "members pr")) is not None
