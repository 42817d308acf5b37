//! One test (at least) per Entra quirk in `docs/entra-scim.md §6`, using the
//! payloads of its §4 where it gives them.
#![allow(clippy::unwrap_used)]

use dirsync_scim::{
    AttrPath, CompValue, CompareOp, Filter, PatchRequest, SCHEMA_ENTERPRISE_USER, SCHEMA_USER,
    ScimError, ScimType, apply_patch, list_response, normalize_user, parse_attr_path,
    parse_attribute_list, parse_filter, parse_group, plan_group_patch, project,
    service_provider_config,
};
use serde_json::{Value, json};

const ENT: &str = SCHEMA_ENTERPRISE_USER;

/// A stored user as the gateway would hold it after docs/entra-scim.md §4.1's POST.
fn stored_user() -> Value {
    normalize_user(json!({
        "schemas": [SCHEMA_USER, ENT],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "active": true,
        "emails": [{"primary": true, "type": "work",
                    "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": []
    }))
    .map(|mut u| {
        u["id"] = json!("48af03ac28ad4fb88478");
        u
    })
    .unwrap()
}

fn patch(mut resource: Value, body: Value) -> Value {
    let request = PatchRequest::parse(&body).unwrap();
    apply_patch(&mut resource, &request).unwrap();
    resource
}

fn patch_err(mut resource: Value, body: Value) -> ScimError {
    let before = resource.clone();
    let err = match PatchRequest::parse(&body) {
        Ok(request) => apply_patch(&mut resource, &request).unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(
        resource, before,
        "a failed PATCH must not change the resource"
    );
    err
}

fn ops(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

fn matches(filter: &str, resource: &Value) -> bool {
    parse_filter(filter).unwrap().matches(resource)
}

// Q1 ------------------------------------------------------------------------

#[test]
fn q1_capitalised_op_values() {
    // docs/entra-scim.md §4.5, second request.
    let u = patch(
        stored_user(),
        json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations":[{"op":"Replace","path":"userName",
                              "value":"5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}]}),
    );
    assert_eq!(
        u["userName"],
        "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    );
    assert_eq!(u["id"], "48af03ac28ad4fb88478", "renaming keeps the id");

    let u = patch(
        u,
        ops(json!([
            {"op": "REPLACE", "path": "displayName", "value": "D"},
            {"op": "Add", "path": "title", "value": "T"},
            {"op": "Remove", "path": "name.formatted"}
        ])),
    );
    assert_eq!(
        (u["displayName"].as_str(), u["title"].as_str()),
        (Some("D"), Some("T"))
    );
    assert!(u["name"].get("formatted").is_none());
}

// Q2 ------------------------------------------------------------------------

#[test]
fn q2_string_booleans_in_patch() {
    // docs/entra-scim.md §4.6 default form without the flag.
    let u = patch(
        stored_user(),
        json!({"Operations":[{"op":"Replace","path":"active","value":"False"}],
                                         "schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}),
    );
    assert_eq!(u["active"], json!(false));
    // With the flag: a real boolean.
    let u = patch(
        u,
        ops(json!([{"op": "replace", "path": "active", "value": true}])),
    );
    assert_eq!(u["active"], json!(true));
    let u = patch(
        u,
        ops(json!([{"op": "replace", "path": "active", "value": "fAlSe"}])),
    );
    assert_eq!(u["active"], json!(false));
    let u = patch(
        u,
        ops(json!([{"op": "replace", "value": {"active": "TRUE"}}])),
    );
    assert_eq!(u["active"], json!(true));
}

#[test]
fn q2_string_booleans_in_post() {
    // Postman "Post emp1 with string True" → 201 and a boolean true.
    let u = normalize_user(json!({"userName": "emp1", "active": "True",
                                  "emails": [{"value": "e@x", "type": "work", "primary": "True"}]}))
    .unwrap();
    assert_eq!(u["active"], json!(true));
    assert_eq!(u["emails"][0]["primary"], json!(true));
    let u = normalize_user(json!({"userName": "emp1", "active": "false"})).unwrap();
    assert_eq!(u["active"], json!(false));
}

#[test]
fn q2_string_booleans_in_filter_paths() {
    let user = json!({"userName": "u", "roles": [{"value": "admin", "primary": true}, {"value": "user", "primary": false}]});
    // pingidentity/scim2 #239 payload.
    let u = patch(
        user,
        ops(
            json!([{"op":"replace","path":"roles[primary eq \"True\"].display","value":"Admin role"}]),
        ),
    );
    assert_eq!(
        u["roles"],
        json!([{"value": "admin", "primary": true, "display": "Admin role"}, {"value": "user", "primary": false}])
    );
    assert!(matches(r#"roles[primary eq "True"]"#, &u));
    assert!(matches(r#"roles[primary eq "true"].value eq "admin""#, &u));
    assert!(!matches(r#"roles[primary eq "True"].value eq "user""#, &u));
    // A stored string boolean matches a boolean literal too.
    assert!(matches("active eq true", &json!({"active": "True"})));
}

// Q3 ------------------------------------------------------------------------

#[test]
fn q3_replace_existing_filtered_element() {
    // docs/entra-scim.md §4.5 first request.
    let u = patch(
        stored_user(),
        json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations":[
                 {"op":"Replace","path":"emails[type eq \"work\"].value","value":"updatedEmail@microsoft.com"},
                 {"op":"Replace","path":"name.familyName","value":"updatedFamilyName"}]}),
    );
    assert_eq!(
        u["emails"],
        json!([{"primary": true, "type": "work", "value": "updatedEmail@microsoft.com"}])
    );
    assert_eq!(u["name"]["familyName"], "updatedFamilyName");
    assert_eq!(u["name"]["givenName"], "givenName");
}

#[test]
fn q3_add_on_filter_path_creates_the_element() {
    let u = json!({"userName": "u"});
    let u = patch(
        u,
        ops(json!([
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "w@x.com"},
            {"op": "Add", "path": "addresses[type eq \"work\"].postalCode", "value": "98052"},
            {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"},
            {"op": "Add", "path": "emails[type eq \"other\"].Value", "value": "o@x.com"}
        ])),
    );
    assert_eq!(
        u["emails"],
        json!([{"type": "work", "value": "w@x.com"}, {"type": "other", "value": "o@x.com"}])
    );
    assert_eq!(
        u["addresses"],
        json!([{"type": "work", "postalCode": "98052"}])
    );
    assert_eq!(
        u["phoneNumbers"],
        json!([{"type": "mobile", "value": "+1 555"}])
    );
    // An existing element is updated, not duplicated.
    let u = patch(
        u,
        ops(json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "w2@x.com"}])),
    );
    assert_eq!(u["emails"][0], json!({"type": "work", "value": "w2@x.com"}));
    assert_eq!(u["emails"].as_array().unwrap().len(), 2);
}

#[test]
fn q3_add_with_empty_string_creates_the_element() {
    // Q&A 708183.
    let u = patch(
        json!({"userName": "u"}),
        ops(json!([{"op":"Add","path":"emails[type eq \"work\"].value","value":""}])),
    );
    assert_eq!(u["emails"], json!([{"type": "work", "value": ""}]));
}

#[test]
fn q3_filter_form_outside_the_grammar() {
    let f = parse_filter(r#"emails[type eq "work"].value eq "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com""#)
        .unwrap();
    let Filter::Compare { path, op, .. } = &f else {
        panic!("{f:?}")
    };
    assert_eq!(path.name, "emails");
    assert_eq!(path.sub_attr.as_deref(), Some("value"));
    assert_eq!(
        path.value_filter.as_deref(),
        Some(&Filter::Compare {
            path: AttrPath::new("type"),
            op: CompareOp::Eq,
            value: CompValue::Str("work".into())
        })
    );
    assert_eq!(*op, CompareOp::Eq);
    assert!(f.matches(&stored_user()));
    assert!(!matches(
        r#"emails[type eq "home"].value eq "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com""#,
        &stored_user()
    ));
    assert!(matches(
        r#"emails.value eq "test_user_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com""#,
        &stored_user()
    ));
}

// Q4 ------------------------------------------------------------------------

#[test]
fn q4_pathless_dotted_and_urn_keys() {
    for op in ["replace", "add"] {
        let u = patch(
            stored_user(),
            ops(
                json!([{"op": op, "value": {"displayName":"Bjfe","name.givenName":"Kkom",
              "name.familyName":"Unua",
              "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"Aklq"}}]),
            ),
        );
        assert_eq!(u["displayName"], "Bjfe");
        assert_eq!(
            u["name"],
            json!({"formatted": "givenName familyName", "givenName": "Kkom", "familyName": "Unua"})
        );
        assert_eq!(u[ENT], json!({"employeeNumber": "Aklq"}));
        assert!(u["schemas"].as_array().unwrap().contains(&json!(ENT)));
        assert!(
            u.get("name.givenName").is_none(),
            "dotted keys are paths, not attributes"
        );
    }
}

// Q5 / Q6 -------------------------------------------------------------------

#[test]
fn q5_single_value_add_replaces() {
    let u = patch(
        stored_user(),
        ops(json!([{"op":"Add","path":"nickName","value":"Babs"}])),
    );
    assert_eq!(u["nickName"], "Babs");
    let u = patch(
        u,
        ops(json!([{"op":"Add","path":"nickName","value":"Barbara"}])),
    );
    assert_eq!(u["nickName"], "Barbara");
}

#[test]
fn q6_add_on_multi_valued_custom_attribute_appends() {
    // Documented behaviour: RFC add appends (deduplicated); the gateway does
    // not expose multi-valued custom attributes, so no drift handling.
    let urn = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    let u = patch(
        stored_user(),
        ops(json!([{"op": "Add", "path": format!("{urn}:skills"), "value": ["a", "b"]}])),
    );
    let u = patch(
        u,
        ops(json!([{"op": "Add", "path": format!("{urn}:skills"), "value": ["b", "c"]}])),
    );
    assert_eq!(u[urn]["skills"], json!(["a", "b", "c"]));
}

// Q7 ------------------------------------------------------------------------

#[test]
fn q7_enterprise_paths_and_nested_bodies() {
    let u = patch(
        stored_user(),
        ops(json!([
            {"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":"701984"},
            {"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Sales"}
        ])),
    );
    assert_eq!(
        u[ENT],
        json!({"employeeNumber": "701984", "department": "Sales"})
    );
    assert_eq!(u["schemas"], json!([SCHEMA_USER, ENT]));

    let u = patch(
        u,
        ops(json!([
            {"op":"Remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"},
            {"op":"Remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}
        ])),
    );
    assert!(u.get(ENT).is_none());
    assert_eq!(
        u["schemas"],
        json!([SCHEMA_USER]),
        "extension URN dropped once empty"
    );

    // POST body with the extension nested under its URN, in odd casing.
    let u = normalize_user(json!({
        "schemas": [SCHEMA_USER, "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER"],
        "userName": "u",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"EmployeeNumber": "1", "costcenter": "C"},
        "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User": {"tag": "blue"}
    }))
    .unwrap();
    assert_eq!(u[ENT], json!({"employeeNumber": "1", "costCenter": "C"}));
    assert_eq!(
        u["urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"],
        json!({"tag": "blue"})
    );
    assert_eq!(
        u["schemas"],
        json!([
            SCHEMA_USER,
            ENT,
            "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
        ])
    );

    // Custom extension attribute by path.
    let u = patch(
        u,
        ops(
            json!([{"op":"add","path":"urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:tag","value":"red"}]),
        ),
    );
    assert_eq!(
        u["urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"]["tag"],
        "red"
    );
    assert!(matches(
        r#"urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:tag eq "RED""#,
        &u
    ));
    assert!(matches(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1""#,
        &u
    ));
}

// Q8 ------------------------------------------------------------------------

#[test]
fn q8_manager_shapes_in_post() {
    let expected = json!({"value": "123456"});
    for body in [
        json!({"userName": "u", ENT: {"manager": "123456"}}),
        json!({"userName": "u", ENT: {"manager": {"value": "123456"}}}),
        json!({"userName": "u", ENT: {"Manager": {"Value": "123456"}}}),
        json!({"userName": "u", ENT: {"manager": [{"$ref": "https://h/Users/123456", "value": "123456"}]}}),
        json!({"userName": "u", "manager": "123456"}),
    ] {
        let u = normalize_user(body.clone()).unwrap();
        assert_eq!(u[ENT]["manager"], expected, "{body}");
        assert!(u["schemas"].as_array().unwrap().contains(&json!(ENT)));
    }
    // Older docs send `"manager": null`: absent, no extension.
    let u = normalize_user(json!({"userName": "u", ENT: {"manager": null}})).unwrap();
    assert!(u.get(ENT).is_none());
}

#[test]
fn q8_manager_shapes_in_patch() {
    let id = "2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2";
    let expected = json!({"value": id});
    for op in [
        json!({"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":id}),
        json!({"op":"Add","path":"manager","value":[{"$ref":format!("http://example.com/Users/{id}"),"value":id}]}),
        json!({"op":"Replace","path":"manager","value":{"Value":id}}),
        json!({"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":id}}),
        json!({"op":"replace","value":{ENT: {"manager": {"value": id}}}}),
        json!({"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":id}),
    ] {
        let u = patch(stored_user(), ops(json!([op.clone()])));
        assert_eq!(u[ENT], json!({"manager": expected}), "{op}");
        assert!(
            u.get("manager").is_none(),
            "never stored at the top level: {op}"
        );
        assert!(u["schemas"].as_array().unwrap().contains(&json!(ENT)));
    }
}

#[test]
fn q8_manager_removal() {
    let with_manager = patch(
        stored_user(),
        ops(json!([{"op":"add","path":"manager","value":"manager-id"}])),
    );
    // scim-patch #453 payload.
    let u = patch(
        with_manager.clone(),
        ops(json!([{"op":"remove","path":"manager[value eq \"manager-id\"]"}])),
    );
    assert!(u.get(ENT).is_none());
    assert!(!u["schemas"].as_array().unwrap().contains(&json!(ENT)));
    // A filter naming another manager leaves it alone.
    let u = patch(
        with_manager.clone(),
        ops(json!([{"op":"remove","path":"manager[value eq \"someone-else\"]"}])),
    );
    assert_eq!(u[ENT]["manager"], json!({"value": "manager-id"}));
    // The validator's "Replace with empty".
    for empty in [json!(""), json!(null), json!([]), json!({"value": ""})] {
        let u = patch(
            with_manager.clone(),
            ops(
                json!([{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":empty}]),
            ),
        );
        assert!(u.get(ENT).is_none(), "{empty}");
    }
}

// Q9 / Q10 ------------------------------------------------------------------

#[test]
fn q9_member_removal_with_value_array_removes_only_those() {
    // docs/entra-scim.md §4.12 without the flag.
    let body = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"Remove","path":"members",
                       "value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"}]}]});
    let plan = plan_group_patch(&PatchRequest::parse(&body).unwrap()).unwrap();
    assert!(!plan.remove_all_members, "must never be read as remove-all");
    assert_eq!(plan.remove_members, vec!["f648f8d5ea4e4cd38e9c"]);
    assert!(plan.add_members.is_empty());

    // docs/entra-scim.md §4.12 with the flag.
    let body = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"remove","path":"members[value eq \"7f4bc1a3-285e-48ae-8202-5accb43efb0e\"]"}]});
    let plan = plan_group_patch(&PatchRequest::parse(&body).unwrap()).unwrap();
    assert!(!plan.remove_all_members);
    assert_eq!(
        plan.remove_members,
        vec!["7f4bc1a3-285e-48ae-8202-5accb43efb0e"]
    );

    // Reference Postman "Patch remove all users": no value.
    let plan = plan_group_patch(
        &PatchRequest::parse(&ops(json!([{"op":"remove","path":"members"}]))).unwrap(),
    )
    .unwrap();
    assert!(plan.remove_all_members);
    assert!(plan.remove_members.is_empty());
}

#[test]
fn q9_member_add_several_per_operation() {
    // docs/entra-scim.md §4.11, with several members as gallery onboarding requires.
    let body = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"Add","path":"members",
                       "value":[{"$ref":null,"value":"f648f8d5ea4e4cd38e9c"},
                                {"$ref":null,"value":"a1"},
                                {"displayName":"x","value":"a2"}]}]});
    let plan = plan_group_patch(&PatchRequest::parse(&body).unwrap()).unwrap();
    assert_eq!(plan.add_members, vec!["f648f8d5ea4e4cd38e9c", "a1", "a2"]);
    assert!(plan.remove_members.is_empty() && !plan.remove_all_members);
}

#[test]
fn q10_member_add_with_string_value() {
    let plan = plan_group_patch(
        &PatchRequest::parse(&ops(
            json!([{"op":"add","path":"members","value":"string id 1"}]),
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(plan.add_members, vec!["string id 1"]);
}

// Q11 -----------------------------------------------------------------------

#[test]
fn q11_post_user_from_the_tutorial() {
    let u = normalize_user(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "active": true,
        "emails": [{"primary": true, "type": "work",
                    "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName",
                 "givenName": "givenName"},
        "roles": []
    }))
    .unwrap();
    assert_eq!(
        u,
        json!({
            "schemas": [SCHEMA_USER],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
            "active": true,
            "emails": [{"primary": true, "type": "work",
                        "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"}],
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"}
        }),
        "meta dropped, empty roles dropped, enterprise URN dropped as no enterprise attribute is present"
    );
}

#[test]
fn q11_older_create_with_nulls_and_malformed_urn() {
    let u = normalize_user(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
        "id": "client-sent", "userName": "u", "addresses": null, "phoneNumbers": null,
        "title": null, "department": null, "manager": null, "active": null,
        "misspeledAttribute": "kept"
    }))
    .unwrap();
    assert_eq!(
        u,
        json!({
            "schemas": [SCHEMA_USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
            "userName": "u",
            "active": true,
            "misspeledAttribute": "kept"
        })
    );
}

#[test]
fn q11_group_with_adscim_urn() {
    // docs/entra-scim.md §4.8.
    let g = parse_group(
        &json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group",
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId":"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName":"displayName",
        "meta":{"resourceType":"Group"}}),
    )
    .unwrap();
    assert_eq!(g.display_name, "displayName");
    assert_eq!(
        g.external_id.as_deref(),
        Some("8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")
    );
    assert!(g.member_ids.is_empty());
}

// Q12 -----------------------------------------------------------------------

#[test]
fn q12_null_update_test() {
    let full = patch(
        stored_user(),
        ops(json!([{"op": "add", "value": {
            "displayName": "D", "title": "T", "nickName": "N",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Dep"}}])),
    );
    for empty in [json!(""), json!(null)] {
        let u = patch(
            full.clone(),
            ops(json!([
                {"op": "Replace", "path": "displayName", "value": empty},
                {"op": "Replace", "path": "title", "value": empty},
                {"op": "Replace", "path": "name.formatted", "value": empty},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": empty},
                {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": empty},
                {"op": "replace", "value": {"nickName": empty}}
            ])),
        );
        for gone in ["displayName", "title", "nickName", "emails", ENT] {
            assert!(u.get(gone).is_none(), "{gone} with {empty}");
        }
        assert!(u["name"].get("formatted").is_none());
        assert_eq!(u["userName"], full["userName"]);
    }
}

// Q13 -----------------------------------------------------------------------

#[test]
fn q13_excluded_members_and_attribute_lists() {
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "927fa2c08dcb4a7fae9e",
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "meta": {"resourceType": "Group"}, "displayName": "displayName", "members": [{"value": "u1"}]});
    let p = project(&group, &[], &parse_attribute_list("members"));
    let mut expected = group.clone();
    expected.as_object_mut().unwrap().remove("members");
    assert_eq!(p, expected);

    let user = stored_user();
    let p = project(
        &user,
        &parse_attribute_list(r#"emails[type eq "work"]"#),
        &[],
    );
    assert_eq!(
        p,
        json!({"schemas": user["schemas"], "id": user["id"], "emails": user["emails"]})
    );
    let p = project(&user, &parse_attribute_list("userName,emails"), &[]);
    assert_eq!(
        p,
        json!({"schemas": user["schemas"], "id": user["id"], "userName": user["userName"], "emails": user["emails"]})
    );
    let p = project(&user, &parse_attribute_list("id"), &[]);
    assert_eq!(p, json!({"schemas": user["schemas"], "id": user["id"]}));
}

// Q14 -----------------------------------------------------------------------

#[test]
fn q14_case_insensitive_names() {
    let u = normalize_user(json!({
        "UserName": "bob", "DisplayName": "BobIsAmazing",
        "Emails": [{"Value": "b@x", "Type": "work", "Primary": true}],
        "Name": {"FamilyName": "Employee"},
        ENT: {"Department": "Dep", "Manager": {"Value": "m1"}}
    }))
    .unwrap();
    assert_eq!(u["userName"], "bob");
    assert_eq!(u["displayName"], "BobIsAmazing");
    assert_eq!(
        u["emails"],
        json!([{"value": "b@x", "type": "work", "primary": true}])
    );
    assert_eq!(u["name"], json!({"familyName": "Employee"}));
    assert_eq!(
        u[ENT],
        json!({"department": "Dep", "manager": {"value": "m1"}})
    );

    assert!(matches(r#"DisplayName eq "BobIsAmazing""#, &u));
    assert!(matches(
        r#"name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co x)"#,
        &u
    ));
    assert!(matches(r#"USERNAME EQ "BOB""#, &u));

    // PATCH keeps the stored spelling and finds attributes in any case.
    let stored = json!({"userName": "bob", "NickName": "b"});
    let u = patch(
        stored,
        ops(
            json!([{"op": "replace", "path": "nickname", "value": "c"}, {"op": "add", "path": "NAME.GIVENNAME", "value": "G"}]),
        ),
    );
    assert_eq!(
        u,
        json!({"userName": "bob", "NickName": "c", "name": {"givenName": "G"}})
    );
}

// Q15 / Q16 / Q17 / Q18 -----------------------------------------------------

#[test]
fn q16_duplicate_is_409_uniqueness() {
    let body = ScimError::conflict_uniqueness("userName 'emp3' already exists").to_json();
    assert_eq!(body["status"], "409");
    assert_eq!(body["scimType"], "uniqueness");
    assert!(body["detail"].as_str().unwrap().contains("emp3"));
}

#[test]
fn q17_etag_not_advertised_and_q18_paging_echoes_start_index() {
    let c = service_provider_config("https://h/scim/v2", 100, 1 << 20);
    assert_eq!(c["etag"]["supported"], false);
    let l = list_response(vec![json!({"id": "6"}), json!({"id": "7"})], 12, 6);
    assert_eq!(
        (
            l["startIndex"].as_u64(),
            l["itemsPerPage"].as_u64(),
            l["totalResults"].as_u64()
        ),
        (Some(6), Some(2), Some(12))
    );
    // docs/entra-scim.md §1.3 / §4.4: zero hits is still a ListResponse.
    assert_eq!(list_response(vec![], 0, 1)["Resources"], json!([]));
}

// Q19 -----------------------------------------------------------------------

#[test]
fn q19_reference_check_with_and() {
    let f = parse_filter(r#"id eq "54D382A4-9EDE-4B7B-A3F2-69CE1E8C7B36" and manager eq "2819c223-7f76-453a-919d-413861904646""#).unwrap();
    let Filter::And(l, r) = &f else {
        panic!("{f:?}")
    };
    assert!(matches!(&**l, Filter::Compare { path, .. } if path.is("id")));
    assert!(matches!(&**r, Filter::Compare { path, .. } if path.is("manager")));
    let u = json!({"id": "54D382A4-9EDE-4B7B-A3F2-69CE1E8C7B36", "userName": "u",
                   ENT: {"manager": {"value": "2819c223-7f76-453a-919d-413861904646"}}});
    assert!(f.matches(&u));
    let other = json!({"id": "54D382A4-9EDE-4B7B-A3F2-69CE1E8C7B36", "userName": "u"});
    assert!(!f.matches(&other));
    // `id` is caseExact.
    assert!(!matches(
        r#"id eq "54d382a4-9ede-4b7b-a3f2-69ce1e8c7b36""#,
        &u
    ));
}

// Q20 -----------------------------------------------------------------------

#[test]
fn q20_repeated_noop_patches_are_idempotent() {
    let body = ops(json!([{"op":"Replace","path":"active","value":"True"},
                          {"op":"Add","path":"manager","value":"m"}]));
    let once = patch(stored_user(), body.clone());
    let twice = patch(once.clone(), body);
    assert_eq!(once, twice);
}

// Q21 -----------------------------------------------------------------------

#[test]
fn q21_whitespace_and_bare_values() {
    let a = parse_filter(r#"userName eq "x""#).unwrap();
    for f in [
        "  userName  eq  \"x\"  ",
        "userName\teq\t\"x\"",
        "\nuserName eq \"x\"\r\n",
        "(userName eq \"x\")",
    ] {
        assert_eq!(parse_filter(f).unwrap(), a, "{f:?}");
    }
    let f = parse_filter("externalId eq jyoung").unwrap();
    assert!(f.matches(&json!({"externalId": "jyoung"})));
    assert!(
        !f.matches(&json!({"externalId": "JYOUNG"})),
        "externalId is caseExact"
    );
}

// Failure paths ---------------------------------------------------------------

#[test]
fn bad_filter_is_invalid_filter_with_position() {
    let e = parse_filter(r#"userName eq "x" and"#).unwrap_err();
    assert_eq!(
        (e.status, e.scim_type),
        (400, Some(ScimType::InvalidFilter))
    );
    assert!(e.detail.contains("position 19"), "{}", e.detail);
    assert_eq!(e.to_json()["scimType"], "invalidFilter");
    let e = parse_filter(r#"userName equals "x""#).unwrap_err();
    assert!(
        e.detail.contains("position 9") && e.detail.contains("expected an operator"),
        "{}",
        e.detail
    );
}

#[test]
fn bad_path_is_invalid_path() {
    let e = parse_attr_path(r#"emails[type eq "work""#).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    let e = patch_err(
        stored_user(),
        ops(json!([{"op":"replace","path":"emails[type eq]","value":"x"}])),
    );
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    let e = patch_err(
        stored_user(),
        ops(json!([{"op":"replace","value":{"bad key": 1}}])),
    );
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
}

#[test]
fn unknown_op_is_invalid_syntax() {
    let e = patch_err(
        stored_user(),
        ops(json!([{"op":"Merge","path":"userName","value":"x"}])),
    );
    assert_eq!(
        (e.status, e.scim_type),
        (400, Some(ScimType::InvalidSyntax))
    );
    let e = patch_err(
        stored_user(),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}),
    );
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
}

#[test]
fn remove_without_path_is_no_target() {
    let e = patch_err(
        stored_user(),
        ops(json!([{"op":"Remove","value":{"userName":"x"}}])),
    );
    assert_eq!(e.scim_type, Some(ScimType::NoTarget));
}

#[test]
fn invalid_values_are_rejected_atomically() {
    let e = patch_err(
        stored_user(),
        ops(json!([{"op":"replace","path":"displayName","value":"ok"},
                   {"op":"replace","path":"active","value":"not-a-bool"}])),
    );
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    assert!(e.detail.starts_with("Operations[1]"), "{}", e.detail);
}

#[test]
fn deep_nesting_is_rejected_without_stack_overflow() {
    // Half of tokio's default worker stack: the limits, not a big main-thread
    // stack, keep recursion shallow (64 levels need ~0.4 MiB in a debug
    // build, ~0.1 MiB in release).
    let handle = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(|| {
            let parens = format!("{}a pr{}", "(".repeat(4000), ")".repeat(4000));
            let nots = format!("{}a pr{}", "not (".repeat(1500), ")".repeat(1500));
            let chain = vec!["a pr"; 2000].join(" and ");
            let brackets = format!("a{}b pr{}", "[".repeat(3000), "]".repeat(3000));
            [parens, nots, chain, brackets]
                .iter()
                .map(|f| parse_filter(f).unwrap_err())
                .collect::<Vec<_>>()
        })
        .unwrap();
    for e in handle.join().unwrap() {
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
    }
}
