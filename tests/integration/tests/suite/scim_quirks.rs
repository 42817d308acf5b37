//! Entra's quirks (docs/entra-scim.md §6) over HTTP: what arrives on the wire, and
//! what the gateway must store and answer.

use dirsync_tests::Stack;
use dirsync_tests::http::ScimClient;
use serde_json::{Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn create(scim: &ScimClient, body: Value) -> Value {
    let reply = scim.post("/Users", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.raw);
    reply.body
}

async fn patch_user(scim: &ScimClient, id: &str, operations: Value) -> Value {
    let reply = scim
        .patch(&format!("/Users/{id}"), &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    // What PATCH answers is what a GET returns.
    let fetched = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(fetched.body, reply.body);
    reply.body
}

#[tokio::test]
async fn q1_q2_q5_capitalised_ops_string_booleans_and_single_value_add() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("q1").await;
    // Q2: "active": "True" in a POST body is 201 with a boolean true.
    let user = create(
        &scim,
        json!({"userName": "q1@example.com", "active": "True"}),
    )
    .await;
    assert_eq!(user["active"], true);
    let id = user["id"].as_str().unwrap();
    let patched = patch_user(
        &scim,
        id,
        json!([{"op": "REPLACE", "path": "active", "value": "False"},
               {"op": "Add", "path": "nickName", "value": "Babs"}]),
    )
    .await;
    assert_eq!(patched["active"], false);
    assert_eq!(patched["nickName"], "Babs");
    let patched = patch_user(
        &scim,
        id,
        json!([{"op": "Add", "path": "nickName", "value": "Bea"}]),
    )
    .await;
    assert_eq!(
        patched["nickName"], "Bea",
        "Add on a single value replaces it"
    );
    stack.stop().await;
}

#[tokio::test]
async fn q3_filter_in_path_creates_the_element_and_is_filterable() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("q3").await;
    let user = create(&scim, json!({"userName": "q3@example.com"})).await;
    let id = user["id"].as_str().unwrap();
    let patched = patch_user(
        &scim,
        id,
        json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "q3.work@example.com"},
               {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
               {"op": "Replace", "path": "addresses[type eq \"work\"].postalCode", "value": "98052"}]),
    )
    .await;
    assert_eq!(
        patched["emails"],
        json!([{"type": "work", "value": "q3.work@example.com"}])
    );
    assert_eq!(
        patched["phoneNumbers"][0]["value"], "+1 555 0100",
        "values are stored exactly as sent"
    );
    assert_eq!(patched["addresses"][0]["postalCode"], "98052");
    // The matching query on the work email, Entra's out-of-grammar form.
    let found = scim
        .get("/Users?filter=emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22q3.work@example.com%22")
        .await;
    assert_eq!(found.status, 200);
    assert_eq!(found.body["totalResults"], 1);
    // An empty-string Add still creates nothing harmful and answers 200.
    let reply = scim
        .patch(&format!("/Users/{id}"), &json!({"Operations": [{"op": "Add", "path": "emails[type eq \"other\"].value", "value": ""}]}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    stack.stop().await;
}

#[tokio::test]
async fn q4_q7_pathless_dotted_and_urn_keys_and_enterprise_paths() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("q4").await;
    let user = create(
        &scim,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
               "userName": "q4@example.com",
               ENTERPRISE: {"department": "Sales"}}),
    )
    .await;
    assert_eq!(user[ENTERPRISE]["department"], "Sales");
    let id = user["id"].as_str().unwrap();
    let patched = patch_user(
        &scim,
        id,
        json!([{"op": "replace", "value": {
            "displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"}},
               {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Marketing"}]),
    )
    .await;
    assert_eq!(patched["displayName"], "Bjfe");
    assert_eq!(patched["name"]["givenName"], "Kkom");
    assert_eq!(patched["name"]["familyName"], "Unua");
    assert_eq!(patched[ENTERPRISE]["employeeNumber"], "Aklq");
    assert_eq!(patched[ENTERPRISE]["department"], "Marketing");
    assert!(
        patched["schemas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == ENTERPRISE)
    );
    assert!(
        patched.get("name.givenName").is_none(),
        "dotted keys are paths, not attributes"
    );
    stack.stop().await;
}

#[tokio::test]
async fn q8_manager_in_every_shape_is_returned_as_a_complex_value() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("q8").await;
    let boss = create(&scim, json!({"userName": "boss@example.com"})).await;
    let boss_id = boss["id"].as_str().unwrap().to_owned();
    // A bare string in a POST body.
    let user = create(
        &scim,
        json!({"userName": "q8@example.com", ENTERPRISE: {"manager": boss_id}}),
    )
    .await;
    assert_eq!(user[ENTERPRISE]["manager"], json!({"value": boss_id}));
    let id = user["id"].as_str().unwrap();
    // A bare string at the URN path (flag shape).
    let patched = patch_user(
        &scim,
        id,
        json!([{"op": "add", "path": format!("{ENTERPRISE}:manager"), "value": "m-2"}]),
    )
    .await;
    assert_eq!(patched[ENTERPRISE]["manager"], json!({"value": "m-2"}));
    // A one-element array at the short path (old docs).
    let patched = patch_user(
        &scim,
        id,
        json!([{"op": "Add", "path": "manager", "value": [{"$ref": "http://example.com/Users/m-3", "value": "m-3"}]}]),
    )
    .await;
    assert_eq!(patched[ENTERPRISE]["manager"]["value"], "m-3");
    // Remove by a value filter.
    let patched = patch_user(
        &scim,
        id,
        json!([{"op": "remove", "path": "manager[value eq \"m-3\"]"}]),
    )
    .await;
    assert!(
        patched
            .get(ENTERPRISE)
            .and_then(|e| e.get("manager"))
            .is_none(),
        "{patched}"
    );
    // Q19: the legacy reference check.
    let check = scim
        .get(&format!(
            "/Users?filter=id%20eq%20%22{id}%22%20and%20manager%20eq%20%22nobody%22&attributes=id"
        ))
        .await;
    assert_eq!(check.status, 200);
    assert_eq!(check.body["totalResults"], 0);
    stack.stop().await;
}

#[tokio::test]
async fn q10_q11_q12_lenient_input() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("q11").await;
    // Nulls, a malformed URN, client meta, empty roles, an unknown attribute.
    let user = create(
        &scim,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                           "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
               "userName": "q11@example.com", "addresses": null, "title": null,
               "meta": {"resourceType": "User"}, "roles": [], "favouriteColour": "teal",
               ENTERPRISE: {"department": null, "manager": null}}),
    )
    .await;
    assert!(user.get("title").is_none());
    assert!(user.get("addresses").is_none());
    let id = user["id"].as_str().unwrap();
    // Q12: "" then null both clear an optional attribute.
    patch_user(
        &scim,
        id,
        json!([{"op": "Replace", "path": "title", "value": "Lead"}]),
    )
    .await;
    let cleared = patch_user(
        &scim,
        id,
        json!([{"op": "Replace", "path": "title", "value": ""}]),
    )
    .await;
    assert!(cleared.get("title").is_none_or(|t| t == ""), "{cleared}");
    patch_user(
        &scim,
        id,
        json!([{"op": "Replace", "path": "title", "value": "Lead"}]),
    )
    .await;
    let cleared = patch_user(
        &scim,
        id,
        json!([{"op": "Replace", "path": "title", "value": null}]),
    )
    .await;
    assert!(cleared.get("title").is_none(), "{cleared}");
    // Q10: a bare string member value.
    let group = scim.post("/Groups", &json!({"displayName": "Q10"})).await;
    let group_id = group.body["id"].as_str().unwrap();
    let reply = scim
        .patch(
            &format!("/Groups/{group_id}"),
            &json!({"Operations": [{"op": "add", "path": "members", "value": id}]}),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.raw);
    assert_eq!(
        scim.get(&format!("/Groups/{group_id}")).await.body["members"][0]["value"],
        id
    );
    stack.stop().await;
}

#[tokio::test]
async fn q13_q14_projection_and_case_insensitive_names() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("q14").await;
    create(
        &scim,
        json!({"UserName": "q14@example.com", "Emails": [{"Type": "work", "Value": "q14@example.com", "Primary": "True"}],
               "name": {"FamilyName": "Case"}}),
    )
    .await;
    let reply = scim
        .get("/Users?filter=USERNAME%20EQ%20%22Q14@EXAMPLE.COM%22&attributes=userName,emails")
        .await;
    assert_eq!(reply.body["totalResults"], 1);
    let resource = &reply.body["Resources"][0];
    assert_eq!(resource["userName"], "q14@example.com");
    assert!(resource.get("emails").is_some());
    assert!(
        resource.get("name").is_none(),
        "attributes= keeps only what was asked, plus id"
    );
    assert!(resource.get("id").is_some());
    let by_family = scim
        .get("/Users?filter=name.FamilyName%20eq%20%22case%22")
        .await;
    assert_eq!(by_family.body["totalResults"], 1);
    let work = scim
        .get("/Users?attributes=emails%5Btype%20eq%20%22work%22%5D")
        .await;
    assert!(work.body["Resources"][0].get("emails").is_some());
    let group = scim
        .post("/Groups", &json!({"displayName": "Mixed Case"}))
        .await;
    assert_eq!(group.status, 201);
    let by_name = scim
        .get("/Groups?filter=DisplayName%20eq%20%22mixed%20case%22")
        .await;
    assert_eq!(by_name.body["totalResults"], 1);
    stack.stop().await;
}

#[tokio::test]
async fn q16_a_repeated_create_is_a_409_and_the_match_finds_it() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("q16").await;
    let body = json!({"userName": "retry@example.com", "externalId": "retry"});
    let first = create(&scim, body.clone()).await;
    // The response was "lost"; Entra retries the POST.
    let again = scim.post("/Users", &body).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["scimType"], "uniqueness");
    assert!(again.body["detail"].is_string());
    // Its next matching query finds the user, so it adopts the same id.
    let matched = scim.get("/Users?filter=externalId+eq+%22retry%22").await;
    assert_eq!(matched.body["Resources"][0]["id"], first["id"]);
    stack.stop().await;
}
