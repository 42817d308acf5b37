//! `/Groups` over HTTP: created empty, filled and emptied by PATCH in both of
//! Entra's shapes, atomic on unknown members, and safe under concurrent
//! PATCHes to one group.

use std::collections::BTreeSet;

use dirsync_tests::Stack;
use dirsync_tests::http::ScimClient;
use serde_json::{Value, json};

async fn new_user(scim: &ScimClient, name: &str) -> String {
    let reply = scim
        .post("/Users", &json!({"userName": name, "active": true}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn new_group(scim: &ScimClient, name: &str) -> String {
    let reply = scim
        .post(
            "/Groups",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "externalId": format!("ext-{name}"),
                "displayName": name,
                "meta": {"resourceType": "Group"}
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    assert_eq!(reply.body["members"], json!([]));
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn members(scim: &ScimClient, group: &str) -> BTreeSet<String> {
    let reply = scim.get(&format!("/Groups/{group}")).await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    reply.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member["value"].as_str().unwrap().to_owned())
        .collect()
}

fn patch(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

#[tokio::test]
async fn members_are_added_and_removed_in_both_shapes() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("groups").await;
    let users: Vec<String> = {
        let mut users = Vec::new();
        for index in 0..5 {
            users.push(new_user(&scim, &format!("m{index}@example.com")).await);
        }
        users
    };
    let group = new_group(&scim, "Engineering").await;
    let path = format!("/Groups/{group}");

    // Several members in one Add, as Entra sends them ($ref explicitly null).
    let add = patch(json!([{"op": "Add", "path": "members",
        "value": users[..4].iter().map(|id| json!({"$ref": null, "value": id})).collect::<Vec<_>>()}]));
    let reply = scim.patch(&path, &add).await;
    assert_eq!(reply.status, 204, "{}", reply.raw);
    assert_eq!(
        members(&scim, &group).await,
        users[..4].iter().cloned().collect()
    );
    // Adding a present member again succeeds and changes nothing.
    assert_eq!(scim.patch(&path, &add).await.status, 204);
    assert_eq!(members(&scim, &group).await.len(), 4);

    // Entra's default removal: value array means "these", never "all".
    let remove = patch(
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": users[0]}]}]),
    );
    assert_eq!(scim.patch(&path, &remove).await.status, 204);
    assert_eq!(
        members(&scim, &group).await,
        users[1..4].iter().cloned().collect()
    );
    // Removing an absent member succeeds.
    assert_eq!(scim.patch(&path, &remove).await.status, 204);

    // The aadOptscim062020 shape: a filter in the path, no value.
    let filtered =
        patch(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", users[1])}]));
    assert_eq!(scim.patch(&path, &filtered).await.status, 204);
    assert_eq!(
        members(&scim, &group).await,
        users[2..4].iter().cloned().collect()
    );

    // excludedAttributes=members, by id and by filter.
    let without = scim
        .get(&format!("{path}?excludedAttributes=members"))
        .await;
    assert!(without.body.get("members").is_none());
    assert_eq!(without.body["displayName"], "Engineering");
    let by_name = scim
        .get("/Groups?excludedAttributes=members&filter=displayName%20eq%20%22Engineering%22")
        .await;
    assert_eq!(by_name.body["totalResults"], 1);
    assert!(by_name.body["Resources"][0].get("members").is_none());
    assert_eq!(by_name.body["Resources"][0]["id"], group.as_str());

    // Remove with no value clears the group.
    assert_eq!(
        scim.patch(&path, &patch(json!([{"op": "remove", "path": "members"}])))
            .await
            .status,
        204
    );
    assert!(members(&scim, &group).await.is_empty());

    // Rename, then delete.
    let rename = patch(json!([{"op": "Replace", "path": "displayName", "value": "Engineering 2"}]));
    assert_eq!(scim.patch(&path, &rename).await.status, 204);
    assert_eq!(scim.get(&path).await.body["displayName"], "Engineering 2");
    assert_eq!(scim.delete(&path).await.status, 204);
    assert_eq!(scim.get(&path).await.status, 404);
    assert_eq!(scim.patch(&path, &rename).await.status, 404);
    stack.stop().await;
}

#[tokio::test]
async fn an_unknown_member_fails_the_whole_patch() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("atomic").await;
    let known = new_user(&scim, "known@example.com").await;
    let group = new_group(&scim, "Atomic").await;
    let path = format!("/Groups/{group}");
    let reply = scim
        .patch(
            &path,
            &patch(json!([
                {"op": "Replace", "path": "displayName", "value": "Renamed"},
                {"op": "Add", "path": "members", "value": [{"value": known}, {"value": "no-such-user"}]}
            ])),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["scimType"], "invalidValue");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("no-such-user"),
        "{}",
        reply.raw
    );
    let after = scim.get(&path).await;
    assert_eq!(
        after.body["displayName"], "Atomic",
        "nothing of that request is applied"
    );
    assert_eq!(after.body["members"], json!([]));
    stack.stop().await;
}

#[tokio::test]
async fn display_names_are_unique_and_groups_can_be_replaced() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("names").await;
    let user = new_user(&scim, "p@example.com").await;
    let group = new_group(&scim, "Finance").await;
    let duplicate = scim
        .post("/Groups", &json!({"displayName": "finance"}))
        .await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(duplicate.body["scimType"], "uniqueness");
    let missing_name = scim.post("/Groups", &json!({"externalId": "x"})).await;
    assert_eq!(missing_name.status, 400);

    let other = new_group(&scim, "Other").await;
    let clash = scim
        .patch(
            &format!("/Groups/{other}"),
            &patch(json!([{"op": "replace", "path": "displayName", "value": "Finance"}])),
        )
        .await;
    assert_eq!(clash.status, 409);

    let replaced = scim
        .put(
            &format!("/Groups/{group}"),
            &json!({"displayName": "Finance EU", "members": [{"value": user}]}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.raw);
    assert_eq!(replaced.body["displayName"], "Finance EU");
    assert_eq!(replaced.body["members"][0]["value"], user.as_str());

    // Deleting a user removes it from its groups.
    assert_eq!(scim.delete(&format!("/Users/{user}")).await.status, 204);
    assert!(members(&scim, &group).await.is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn a_display_name_is_bounded_in_characters_not_bytes() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("wide-names").await;
    // 256 characters of three bytes each: as long as a name may be, and taken whole.
    let widest = "経".repeat(256);
    let taken = scim.post("/Groups", &json!({"displayName": widest})).await;
    assert_eq!(taken.status, 201, "{}", taken.raw);
    assert_eq!(taken.body["displayName"], widest.as_str());

    let too_long = scim
        .post("/Groups", &json!({"displayName": "経".repeat(257)}))
        .await;
    assert_eq!(too_long.status, 400, "{}", too_long.raw);
    assert_eq!(too_long.body["scimType"], "invalidValue");
    let detail = too_long.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("displayName") && detail.contains("256 characters"),
        "{detail}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn concurrent_patches_lose_no_member() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("concurrent").await;
    let group = new_group(&scim, "Everyone").await;
    let mut users = Vec::new();
    for index in 0..60 {
        users.push(new_user(&scim, &format!("c{index}@example.com")).await);
    }
    let mut tasks = Vec::new();
    for chunk in users.chunks(3) {
        let scim = scim.clone();
        let path = format!("/Groups/{group}");
        let body = patch(json!([{"op": "Add", "path": "members",
            "value": chunk.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()}]));
        tasks.push(tokio::spawn(async move {
            scim.patch(&path, &body).await.status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 204);
    }
    assert_eq!(
        members(&scim, &group).await,
        users.iter().cloned().collect()
    );
    let group_reply = scim
        .get(&format!("/Groups/{group}?excludedAttributes=members"))
        .await;
    assert_eq!(
        group_reply.body["meta"]["version"], "W/\"21\"",
        "one version per PATCH"
    );
    stack.stop().await;
}
