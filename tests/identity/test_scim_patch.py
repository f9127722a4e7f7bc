"""PATCH semantics on documents (pure): RFC 7644 section 3.5.2 and the IdPs' own shapes."""

from __future__ import annotations

import pytest

from controlplane.identity.scim.errors import ScimError
from controlplane.identity.scim.patch import apply_patch
from controlplane.identity.scim.schema import GROUP, USER
from tests.identity.scim_helpers import ENTERPRISE, patch_op

BASE = {
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "emails": [{"value": "bjensen@work.example", "type": "work", "primary": True}],
    "active": True,
}
TEAM = {"displayName": "finops", "members": [{"value": "u1"}, {"value": "u2"}]}


def patched(*operations, doc=BASE, resource=USER):
    return apply_patch(resource, doc, patch_op(*operations))


def refused(*operations, doc=BASE, resource=USER) -> ScimError:
    with pytest.raises(ScimError) as error:
        patched(*operations, doc=doc, resource=resource)
    return error.value


def test_the_input_document_is_never_modified():
    before = {k: (v.copy() if isinstance(v, dict | list) else v) for k, v in BASE.items()}
    patched(
        {"op": "replace", "path": "name.givenName", "value": "B"},
        {"op": "remove", "path": "emails"},
    )
    assert before == BASE


# Okta ------------------------------------------------------------------------------------------


def test_okta_deactivate_and_reactivate_without_path():
    assert patched({"op": "replace", "value": {"active": False}})["active"] is False
    assert (
        patched({"op": "replace", "value": {"active": True}}, doc={**BASE, "active": False})[
            "active"
        ]
        is True
    )


def test_okta_group_rename_carries_the_read_only_id():
    doc = patched(
        {"op": "replace", "value": {"id": "apg_1", "displayName": "finance"}},
        doc=TEAM,
        resource=GROUP,
    )
    assert doc == {"displayName": "finance", "members": TEAM["members"]}


def test_okta_member_add_and_remove():
    added = patched(
        {
            "op": "add",
            "path": "members",
            "value": [{"value": "u3", "display": "c@x"}, {"value": "u1"}],
        },
        doc=TEAM,
        resource=GROUP,
    )
    assert added["members"] == [{"value": "u1"}, {"value": "u2"}, {"value": "u3"}]  # no duplicate
    removed = patched({"op": "remove", "path": 'members[value eq "u2"]'}, doc=TEAM, resource=GROUP)
    assert removed["members"] == [{"value": "u1"}]
    nothing = patched(
        {"op": "remove", "path": 'members[value eq "gone"]'}, doc=TEAM, resource=GROUP
    )
    assert nothing == TEAM  # removing what is not there is not an error (retries are safe)
    replaced = patched(
        {"op": "replace", "path": "members", "value": [{"value": "u9"}]}, doc=TEAM, resource=GROUP
    )
    assert replaced["members"] == [{"value": "u9"}]
    emptied = patched({"op": "remove", "path": "members"}, doc=TEAM, resource=GROUP)
    assert "members" not in emptied


# Entra ID --------------------------------------------------------------------------------------


def test_entra_capitalised_ops_and_string_booleans():
    assert patched({"op": "Replace", "path": "active", "value": "False"})["active"] is False
    assert patched({"op": "ADD", "path": "title", "value": "Lead"})["title"] == "Lead"


def test_entra_replace_without_path_with_attribute_paths_as_keys():
    doc = patched(
        {
            "op": "replace",
            "value": {
                "name.formatted": "Barbara J",
                "name.familyName": "Jensen-Smith",
                'emails[type eq "work"].value': "bj@new.example",
                f"{ENTERPRISE}:department": "Finance",
                ENTERPRISE: {"employeeNumber": "42"},
                "urn:ietf:params:scim:schemas:extension:custom:2.0:User:worksiteId": "180",
                "nickName": None,
            },
        }
    )
    assert doc["name"] == {
        "givenName": "Barbara",
        "familyName": "Jensen-Smith",
        "formatted": "Barbara J",
    }
    assert doc["emails"] == [{"value": "bj@new.example", "type": "work", "primary": True}]
    assert doc[ENTERPRISE] == {"department": "Finance", "employeeNumber": "42"}
    assert "urn:ietf:params:scim:schemas:extension:custom:2.0:User" not in doc


def test_entra_add_through_a_filter_creates_the_value_when_missing():
    doc = patched(
        {"op": "Add", "path": 'emails[type eq "home"].value', "value": "b@home.example"},
        {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Oslo"},
    )
    assert doc["emails"][-1] == {"type": "home", "value": "b@home.example"}
    assert doc["addresses"] == [{"type": "work", "locality": "Oslo"}]


def test_entra_remove_members_with_a_value():
    doc = patched(
        {"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "nobody"}]},
        doc=TEAM,
        resource=GROUP,
    )
    assert doc["members"] == [{"value": "u2"}]


def test_entra_manager_as_a_bare_string():
    doc = patched({"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": "boss"})
    assert doc[ENTERPRISE] == {"manager": {"value": "boss"}}


# RFC semantics ---------------------------------------------------------------------------------


def test_add_and_replace_merge_complex_attributes():
    assert patched({"op": "add", "path": "name", "value": {"middleName": "M"}})["name"] == {
        "givenName": "Barbara",
        "familyName": "Jensen",
        "middleName": "M",
    }
    assert patched({"op": "replace", "path": "name", "value": {"givenName": "B"}})["name"] == {
        "givenName": "B",
        "familyName": "Jensen",
    }


def test_a_new_primary_takes_the_flag_from_the_others():
    doc = patched({"op": "add", "path": "emails", "value": [{"value": "n@x", "primary": True}]})
    assert [e.get("primary") for e in doc["emails"]] == [False, True]


def test_filtered_sub_attribute_replace_and_remove():
    doc = {**BASE, "emails": [*BASE["emails"], {"value": "h@home", "type": "home"}]}
    replaced = patched(
        {"op": "replace", "path": 'emails[type eq "home"].value', "value": "x@home"}, doc=doc
    )
    assert replaced["emails"][1] == {"value": "x@home", "type": "home"}
    removed = patched({"op": "remove", "path": 'emails[type eq "work"]'}, doc=doc)
    assert removed["emails"] == [{"value": "h@home", "type": "home"}]
    whole = patched(
        {
            "op": "replace",
            "path": 'emails[type eq "home"]',
            "value": {"value": "y@home", "type": "home"},
        },
        doc=doc,
    )
    assert whole["emails"][1] == {"value": "y@home", "type": "home"}


def test_replace_with_null_or_empty_string_unassigns():
    assert "title" not in patched(
        {"op": "replace", "path": "title", "value": None}, doc={**BASE, "title": "T"}
    )
    assert "title" not in patched(
        {"op": "replace", "path": "title", "value": ""}, doc={**BASE, "title": "T"}
    )


def test_case_insensitive_paths_and_schema_qualified_core_attributes():
    doc = patched(
        {"op": "replace", "path": "NAME.GIVENNAME", "value": "B"},
        {
            "op": "replace",
            "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName",
            "value": "BJ",
        },
    )
    assert doc["name"]["givenName"] == "B" and doc["displayName"] == "BJ"


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "remove"}, "noTarget"),
        ({"op": "remove", "path": "userName"}, "mutability"),
        ({"op": "replace", "path": "userName", "value": None}, "mutability"),
        ({"op": "add", "path": "groups", "value": [{"value": "g"}]}, "mutability"),
        ({"op": "replace", "path": "meta.created", "value": "x"}, "mutability"),
        ({"op": "add", "path": "unknown", "value": "x"}, "invalidPath"),
        ({"op": "add", "path": "emails.value", "value": "x"}, "invalidPath"),
        ({"op": "add", "path": 'title[value eq "x"]', "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 'emails[type sw "h"].value', "value": "x"}, "noTarget"),
        ({"op": "replace", "path": 'emails[nope eq "h"]', "value": "x"}, "invalidFilter"),
        ({"op": "add", "path": "active", "value": "perhaps"}, "invalidValue"),
        ({"op": "add", "path": "emails", "value": [{"value": 5}]}, "invalidValue"),
        ({"op": "add", "path": "name", "value": "not an object"}, "invalidValue"),
        ({"op": "replace", "value": "not an object"}, "invalidValue"),
        ({"op": "add", "path": "title"}, "invalidSyntax"),
        (
            {"op": "add", "path": 'emails[type eq "' + "w" * 3000 + '"].value', "value": "x"},
            "invalidValue",
        ),
        ({"op": "add", "path": r'emails[type eq "\u0000"].value', "value": "x"}, "invalidFilter"),
        ({"op": "copy", "path": "title", "value": "x"}, "invalidSyntax"),
    ],
)
def test_refusals_name_the_scim_error_type(operation, scim_type):
    error = refused(operation)
    assert error.status == 400 and error.scim_type == scim_type, error.detail


def test_the_body_must_be_a_patch_op():
    for body in (
        [],
        {"schemas": ["urn:x"], "Operations": [{"op": "add"}]},
        {"Operations": "x"},
        {},
    ):
        with pytest.raises(ScimError) as error:
            apply_patch(USER, BASE, body)
        assert error.value.scim_type == "invalidSyntax"
    assert (
        apply_patch(USER, BASE, {"operations": [{"OP": "replace", "PATH": "title", "VALUE": "t"}]})[
            "title"
        ]
        == "t"
    )
