//! Microsoft's documented request sequence (docs/entra-scim.md §4, from the
//! provisioning tutorial), end to end against the gateway, with the exact
//! payloads and the answers Entra expects.

use dirsync_tests::Stack;
use serde_json::json;

#[tokio::test]
async fn microsofts_documented_sequence() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("contoso").await;

    // Test Connection: a random GUID as the matching value → 200, empty list.
    let probe = scim
        .get("/Users?filter=userName%20eq%20%228d7a1b43-0f3e-4c6a-9b8e-2f0e6c1d9a77%22")
        .await;
    assert_eq!(probe.status, 200);
    assert_eq!(probe.body["totalResults"], 0);
    assert_eq!(probe.body["Resources"], json!([]));
    let group_probe = scim
        .get("/Groups?excludedAttributes=members&filter=displayName%20eq%20%22a1b2c3d4-0000-4000-8000-000000000000%22")
        .await;
    assert_eq!(group_probe.status, 200);
    assert_eq!(group_probe.body["totalResults"], 0);

    // 4.4 query before create: zero results.
    let none = scim
        .get("/Users?filter=userName+eq+%22Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee%22")
        .await;
    assert_eq!(none.status, 200);
    assert_eq!(none.body["totalResults"], 0);

    // 4.1 Create User.
    let created = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
                "active": true,
                "emails": [{"primary": true, "type": "work",
                            "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"}],
                "meta": {"resourceType": "User"},
                "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
                "roles": []
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.raw);
    let user_id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.body["externalId"],
        "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
    );
    assert_eq!(created.body["active"], true);
    assert_eq!(created.body["name"]["familyName"], "familyName");
    assert!(created.body["meta"]["created"].is_string());
    assert!(created.body["meta"]["lastModified"].is_string());

    // 4.2 Get User, and a 404 for an unknown id.
    let got = scim.get(&format!("/Users/{user_id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body["userName"],
        "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
    );
    let missing = scim.get("/Users/5171a35d82074e068ce2").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["status"], "404");

    // 4.3 Get User by query (userName, and externalId).
    let by_name = scim
        .get("/Users?filter=userName+eq+%22Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee%22")
        .await;
    assert_eq!(by_name.body["totalResults"], 1);
    assert_eq!(by_name.body["Resources"][0]["id"], user_id.as_str());
    let by_external = scim
        .get("/Users?filter=externalId+eq+%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22")
        .await;
    assert_eq!(by_external.body["totalResults"], 1);

    // 4.5 Update User: multi-valued and single-valued.
    let updated = scim
        .patch(
            &format!("/Users/{user_id}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [
                        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
                        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}]}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.raw);
    assert_eq!(
        updated.body["emails"][0]["value"],
        "updatedEmail@microsoft.com"
    );
    assert_eq!(updated.body["emails"].as_array().unwrap().len(), 1);
    assert_eq!(updated.body["name"]["familyName"], "updatedFamilyName");
    let renamed = scim
        .patch(
            &format!("/Users/{user_id}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "userName",
                                    "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"}]}),
        )
        .await;
    assert_eq!(renamed.status, 200);
    assert_eq!(
        renamed.body["id"],
        user_id.as_str(),
        "renaming keeps the id"
    );
    assert_eq!(
        renamed.body["userName"],
        "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    );

    // 4.6 Disable User, both shapes; disabled users still appear.
    let disabled = scim
        .patch(
            &format!("/Users/{user_id}"),
            &json!({"Operations": [{"op": "Replace", "path": "active", "value": false}],
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}),
        )
        .await;
    assert_eq!(disabled.status, 200);
    assert_eq!(disabled.body["active"], false);
    let enabled = scim
        .patch(
            &format!("/Users/{user_id}"),
            &json!({"Operations": [{"op": "Replace", "path": "active", "value": "True"}]}),
        )
        .await;
    assert_eq!(enabled.body["active"], true);
    let disabled = scim
        .patch(
            &format!("/Users/{user_id}"),
            &json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
        )
        .await;
    assert_eq!(disabled.body["active"], false);
    let still_there = scim
        .get("/Users?filter=externalId+eq+%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22")
        .await;
    assert_eq!(still_there.body["totalResults"], 1);
    assert_eq!(still_there.body["Resources"][0]["active"], false);

    // 4.8 Create Group (with the ADSCIM schema URN).
    let group = scim
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                    "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                    "displayName": "displayName",
                    "meta": {"resourceType": "Group"}}),
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.raw);
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    assert_eq!(group.body["members"], json!([]));
    assert_eq!(group.body["meta"]["resourceType"], "Group");

    // 4.9 Get Group, and Get Group by displayName, without members.
    let got_group = scim
        .get(&format!("/Groups/{group_id}?excludedAttributes=members"))
        .await;
    assert_eq!(got_group.status, 200);
    assert!(got_group.body.get("members").is_none());
    assert_eq!(
        got_group.body["externalId"],
        "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    );
    let by_display = scim
        .get("/Groups?excludedAttributes=members&filter=displayName+eq+%22displayName%22")
        .await;
    assert_eq!(by_display.body["totalResults"], 1);

    // 4.10 Update Group: non-member attribute → 204.
    let renamed_group = scim
        .patch(
            &format!("/Groups/{group_id}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "displayName",
                                    "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]}),
        )
        .await;
    assert_eq!(renamed_group.status, 204);

    // 4.11 add members, 4.12 remove members (tutorial shape) → 204 each.
    let add = scim
        .patch(
            &format!("/Groups/{group_id}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": null, "value": user_id}]}]}),
        )
        .await;
    assert_eq!(add.status, 204, "{}", add.raw);
    let with_members = scim.get(&format!("/Groups/{group_id}")).await;
    assert_eq!(with_members.body["members"][0]["value"], user_id.as_str());
    let remove = scim
        .patch(
            &format!("/Groups/{group_id}"),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": user_id}]}]}),
        )
        .await;
    assert_eq!(remove.status, 204);
    assert_eq!(
        scim.get(&format!("/Groups/{group_id}")).await.body["members"],
        json!([])
    );

    // 4.7 Delete User and 4.13 Delete Group → 204.
    assert_eq!(scim.delete(&format!("/Users/{user_id}")).await.status, 204);
    assert_eq!(
        scim.delete(&format!("/Groups/{group_id}")).await.status,
        204
    );
    assert_eq!(scim.get(&format!("/Users/{user_id}")).await.status, 404);

    // 4.14 Schema discovery.
    let schemas = scim.get("/Schemas").await;
    assert_eq!(schemas.status, 200);
    assert_eq!(
        schemas.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    let ids: Vec<&str> = schemas.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"urn:ietf:params:scim:schemas:core:2.0:User"));
    assert!(ids.contains(&"urn:ietf:params:scim:schemas:core:2.0:Group"));
    assert!(ids.contains(&"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
    assert!(
        !schemas.raw.contains("null"),
        "no nulls in discovery documents"
    );
    let one = scim
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["name"], "User");
    let config = scim.get("/ServiceProviderConfig").await;
    assert_eq!(config.body["patch"]["supported"], true);
    assert_eq!(config.body["filter"]["supported"], true);
    let types = scim.get("/ResourceTypes").await;
    assert_eq!(types.body["totalResults"], 2);
    assert_eq!(scim.get("/ResourceTypes/User").await.status, 200);
    stack.stop().await;
}
