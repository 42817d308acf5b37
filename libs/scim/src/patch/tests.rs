//! The PATCH engine against the shapes Entra and the reference tests send.

use serde_json::{Value, json};

use super::*;
use crate::error::ScimType;
use crate::schema::SCHEMA_ENTERPRISE_USER;

fn req(ops: Value) -> PatchRequest {
    PatchRequest::parse(&json!({"schemas": [crate::schema::SCHEMA_PATCH_OP], "Operations": ops}))
        .unwrap()
}

fn patched(mut resource: Value, ops: Value) -> Value {
    apply_patch(&mut resource, &req(ops)).unwrap();
    resource
}

fn base() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u1",
        "userName": "a@x",
        "active": true,
        "name": {"givenName": "A", "familyName": "B"},
        "emails": [{"value": "a@x", "type": "work", "primary": true}]
    })
}

#[test]
fn parse_tolerates_shapes() {
    let r = PatchRequest::parse(
        &json!({"operations": [{"OP": "REPLACE", "Path": "active", "Value": false}]}),
    )
    .unwrap();
    assert_eq!(r.operations[0].op, PatchOpKind::Replace);
    assert!(r.operations[0].path.as_ref().unwrap().is("active"));
    assert_eq!(r.operations[0].value, Some(json!(false)));
    let r = PatchRequest::parse(
        &json!({"schemas": ["urn:x"], "Operations": [{"op": "add", "path": "", "value": null}]}),
    )
    .unwrap();
    assert_eq!(r.operations[0].path, None);
    assert_eq!(r.operations[0].value, None);
}

#[test]
fn parse_errors() {
    let e = PatchRequest::parse(&json!({"schemas": []})).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    let e =
        PatchRequest::parse(&json!({"Operations": [{"op": "merge", "path": "a"}]})).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    assert!(
        e.detail.contains("Operations[0]") && e.detail.contains("merge"),
        "{}",
        e.detail
    );
    let e =
        PatchRequest::parse(&json!({"Operations": [{"op": "add", "path": "a b"}]})).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    let e = PatchRequest::parse(&json!([1])).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    let e = PatchRequest::parse(&json!({"Operations": "x"})).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    let e = PatchRequest::parse(&json!({"Operations": [{"path": "a"}]})).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
}

#[test]
fn replace_simple_and_sub() {
    let r = patched(
        base(),
        json!([
            {"op": "replace", "path": "userName", "value": "b@x"},
            {"op": "replace", "path": "name.familyName", "value": "C"},
            {"op": "add", "path": "NAME.middleName", "value": "M"}
        ]),
    );
    assert_eq!(r["userName"], "b@x");
    assert_eq!(
        r["name"],
        json!({"givenName": "A", "familyName": "C", "middleName": "M"})
    );
}

#[test]
fn remove_paths() {
    let r = patched(
        base(),
        json!([
            {"op": "remove", "path": "name.givenName"},
            {"op": "remove", "path": "name.familyName"},
            {"op": "remove", "path": "nickName"},
            {"op": "remove", "path": "emails[type eq \"work\"]"}
        ]),
    );
    assert!(
        r.get("name").is_none(),
        "empty complex attribute is dropped"
    );
    assert!(r.get("emails").is_none());
}

#[test]
fn multi_valued_add_appends_and_settles_primary() {
    let r = patched(
        base(),
        json!([
            {"op": "add", "path": "emails", "value": [{"value": "h@x", "type": "home", "Primary": "true"}]}
        ]),
    );
    assert_eq!(
        r["emails"],
        json!([
            {"value": "a@x", "type": "work", "primary": false},
            {"value": "h@x", "type": "home", "primary": true}
        ])
    );
    let r = patched(
        base(),
        json!([{"op": "replace", "path": "emails", "value": [{"value": "z@x"}]}]),
    );
    assert_eq!(r["emails"], json!([{"value": "z@x"}]));
    let r = patched(
        base(),
        json!([{"op": "add", "path": "emails", "value": [{"value": "a@x", "type": "work", "primary": true}]}]),
    );
    assert_eq!(
        r["emails"].as_array().unwrap().len(),
        1,
        "no duplicate on add"
    );
}

#[test]
fn filtered_replace_existing_and_replace_element() {
    let r = patched(
        base(),
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@x"}
        ]),
    );
    assert_eq!(
        r["emails"],
        json!([{"value": "new@x", "type": "work", "primary": true}])
    );
    let r = patched(
        base(),
        json!([
            {"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "w@x"}}
        ]),
    );
    assert_eq!(r["emails"], json!([{"type": "work", "value": "w@x"}]));
    let r = patched(
        base(),
        json!([
            {"op": "add", "path": "emails[type eq \"work\"]", "value": {"display": "W"}}
        ]),
    );
    assert_eq!(
        r["emails"],
        json!([{"value": "a@x", "type": "work", "primary": true, "display": "W"}])
    );
}

#[test]
fn filtered_without_template_is_no_target() {
    let mut r = base();
    let e = apply_patch(
        &mut r,
        &req(json!([
            {"op": "replace", "path": "emails[value co \"zzz\"].display", "value": "x"}
        ])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::NoTarget));
    assert_eq!(r, base(), "atomic: unchanged on error");
}

#[test]
fn sub_attr_on_multi_without_filter() {
    let r = patched(
        json!({"userName": "u"}),
        json!([{"op": "add", "path": "phoneNumbers.value", "value": "1"}]),
    );
    assert_eq!(r["phoneNumbers"], json!([{"value": "1"}]));
    let r = patched(base(), json!([{"op": "remove", "path": "emails.value"}]));
    assert!(r.get("emails").is_none());
}

#[test]
fn read_only_and_schemas_ignored() {
    let r = patched(
        base(),
        json!([
            {"op": "replace", "path": "id", "value": "evil"},
            {"op": "replace", "path": "meta.created", "value": "x"},
            {"op": "replace", "path": "schemas", "value": []},
            {"op": "add", "value": {"id": "evil", "meta": {"a": 1}, "groups": []}}
        ]),
    );
    assert_eq!(r, base());
}

#[test]
fn required_user_name_cannot_be_cleared() {
    for (ops, scim_type) in [
        (
            json!([{"op": "remove", "path": "userName"}]),
            ScimType::Mutability,
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": ""}]),
            ScimType::Mutability,
        ),
        (
            json!([{"op": "replace", "value": {"USERNAME": null}}]),
            ScimType::Mutability,
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": "  "}]),
            ScimType::InvalidValue,
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": 5}]),
            ScimType::InvalidValue,
        ),
    ] {
        let e = apply_patch(&mut base(), &req(ops.clone())).unwrap_err();
        assert_eq!(e.scim_type, Some(scim_type), "{ops}");
        assert!(e.detail.contains("userName"));
    }
}

#[test]
fn members_rejected_in_apply_patch() {
    let mut r = json!({"displayName": "g"});
    let e = apply_patch(
        &mut r,
        &req(json!([{"op": "add", "path": "members", "value": [{"value": "1"}]}])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    assert!(e.detail.contains("plan_group_patch"));
}

#[test]
fn invalid_values() {
    let mut r = base();
    for ops in [
        json!([{"op": "replace", "path": "active", "value": "perhaps"}]),
        json!([{"op": "replace", "path": "name", "value": "x"}]),
        json!([{"op": "replace", "path": "userName", "value": {"a": 1}}]),
        json!([{"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "no"}]),
        json!([{"op": "add", "value": "x"}]),
        json!([{"op": "add"}]),
    ] {
        let e = apply_patch(&mut r, &req(ops.clone())).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{ops}");
    }
    let e = apply_patch(&mut r, &req(json!([{"op": "remove"}]))).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::NoTarget));
    let e = apply_patch(&mut json!([]), &req(json!([]))).unwrap_err();
    assert_eq!(e.status, 500);
}

#[test]
fn unknown_attributes_stored_as_sent() {
    let r = patched(
        base(),
        json!([
            {"op": "add", "path": "favouriteColour", "value": {"a": 1}},
            {"op": "add", "path": "favouriteColour", "value": {"b": 2}},
            {"op": "add", "path": "tags", "value": ["x"]},
            {"op": "add", "path": "tags", "value": ["y", "x"]}
        ]),
    );
    assert_eq!(r["favouriteColour"], json!({"a": 1, "b": 2}));
    assert_eq!(r["tags"], json!(["x", "y"]));
}

#[test]
fn custom_extension_paths() {
    let urn = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    let r = patched(
        base(),
        json!([{"op": "add", "path": format!("{urn}:tag"), "value": "blue"}]),
    );
    assert_eq!(r[urn], json!({"tag": "blue"}));
    assert!(r["schemas"].as_array().unwrap().contains(&json!(urn)));
    let r = patched(r, json!([{"op": "remove", "path": format!("{urn}:tag")}]));
    assert!(r.get(urn).is_none());
    assert!(!r["schemas"].as_array().unwrap().contains(&json!(urn)));
}

#[test]
fn whole_extension_path() {
    let ent = SCHEMA_ENTERPRISE_USER;
    let r = patched(
        base(),
        json!([{"op": "add", "path": ent, "value": {"Department": "D", "manager": "m"}}]),
    );
    assert_eq!(
        r[ent],
        json!({"department": "D", "manager": {"value": "m"}})
    );
    let r = patched(r, json!([{"op": "remove", "path": ent}]));
    assert!(r.get(ent).is_none());
    assert_eq!(
        r["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
}

fn group(ops: Value) -> GroupPatch {
    plan_group_patch(&req(ops)).unwrap()
}

#[test]
fn group_plan_collapses_sequentially() {
    let g = group(json!([
        {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": " b "}, {"value": "a"}]},
        {"op": "remove", "path": "members", "value": [{"value": "b"}]},
        {"op": "remove", "path": "members[value eq \"c\" or value eq \"d\"]"},
        {"op": "add", "path": "members", "value": {"value": "c"}}
    ]));
    assert_eq!(g.add_members, vec!["a", "c"]);
    assert_eq!(g.remove_members, vec!["b", "d"]);
    assert!(!g.remove_all_members);
}

#[test]
fn group_replace_members_and_remove_all() {
    let g = group(json!([
        {"op": "add", "path": "members", "value": [{"value": "x"}]},
        {"op": "replace", "path": "members", "value": [{"value": "a"}]}
    ]));
    assert!(g.remove_all_members);
    assert_eq!(g.add_members, vec!["a"]);
    assert!(g.remove_members.is_empty());
    let g = group(
        json!([{"op": "remove", "path": "members"}, {"op": "remove", "path": "members", "value": [{"value": "q"}]}]),
    );
    assert!(g.remove_all_members && g.remove_members.is_empty() && g.add_members.is_empty());
}

#[test]
fn group_attributes() {
    let g = group(json!([
        {"op": "Replace", "path": "displayName", "value": "New"},
        {"op": "replace", "value": {"ExternalID": "e1", "MEMBERS": [{"value": "m"}], "id": "ignored"}}
    ]));
    assert_eq!(g.display_name.as_deref(), Some("New"));
    assert_eq!(g.external_id, Some(Some("e1".into())));
    assert!(g.remove_all_members && g.add_members == vec!["m"]);
    let g = group(json!([{"op": "remove", "path": "externalId"}]));
    assert_eq!(g.external_id, Some(None));
    assert!(group(json!([])).is_empty());
    // The gallery's group update also sends description; it is ignored.
    let g = group(json!([
        {"op": "Replace", "path": "description", "value": "d"},
        {"op": "replace", "value": {"displayName": "N", "description": "d"}}
    ]));
    assert_eq!(g.display_name.as_deref(), Some("N"));
}

#[test]
fn group_values_meet_the_limits() {
    for ops in [
        json!([{"op": "add", "path": "members", "value": [{"value": "a\u{0}"}]}]),
        json!([{"op": "replace", "path": "displayName", "value": "n\u{0}"}]),
        json!([{"op": "replace", "path": "externalId", "value": "\u{0}"}]),
        json!([{"op": "replace", "path": "externalId", "value": "e".repeat(300)}]),
        json!([{"op": "replace", "path": "displayName", "value": "d".repeat(300)}]),
    ] {
        let e = plan_group_patch(&req(ops.clone())).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{ops}");
    }
}

#[test]
fn group_errors() {
    for (ops, t) in [
        (
            json!([{"op": "replace", "path": "displayName", "value": ""}]),
            ScimType::Mutability,
        ),
        (
            json!([{"op": "replace", "path": "displayName", "value": " "}]),
            ScimType::InvalidValue,
        ),
        (
            json!([{"op": "replace", "path": "displayName"}]),
            ScimType::Mutability,
        ),
        (
            json!([{"op": "remove", "path": "displayName"}]),
            ScimType::Mutability,
        ),
        (
            json!([{"op": "replace", "path": "owners", "value": "d"}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "remove", "path": "members[display eq \"x\"]"}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "add", "path": "members[value eq \"x\"]", "value": "x"}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]),
            ScimType::InvalidValue,
        ),
        (
            json!([{"op": "add", "path": "members", "value": [true]}]),
            ScimType::InvalidValue,
        ),
        (
            json!([{"op": "add", "path": "members", "value": [{"value": "  "}]}]),
            ScimType::InvalidValue,
        ),
        (
            json!([{"op": "add", "path": "members"}]),
            ScimType::InvalidValue,
        ),
        (json!([{"op": "remove"}]), ScimType::NoTarget),
        (json!([{"op": "add", "value": [1]}]), ScimType::InvalidValue),
    ] {
        let e = plan_group_patch(&req(ops.clone())).unwrap_err();
        assert_eq!(e.scim_type, Some(t), "{ops}: {e:?}");
    }
}
