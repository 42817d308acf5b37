//! `/Users` over HTTP: create and read back, uniqueness, matching filters
//! (which never 404), paging, PUT, DELETE and the request-level errors.

use dirsync_tests::Stack;
use serde_json::{Value, json};

fn user(name: &str, external_id: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "externalId": external_id,
        "userName": name,
        "active": true,
        "displayName": format!("Display {name}"),
        "emails": [{"primary": true, "type": "work", "value": name}],
        "name": {"givenName": "Given", "familyName": "Family"}
    })
}

fn filter(expression: &str) -> String {
    let mut encoded = String::new();
    for byte in expression.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    format!("/Users?filter={encoded}")
}

#[tokio::test]
async fn create_then_get_returns_the_same_resource() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("users").await;
    let created = scim.post("/Users", &user("ada@example.com", "ada")).await;
    assert_eq!(created.status, 201, "{}", created.raw);
    assert_eq!(
        created.header("content-type"),
        Some("application/scim+json")
    );
    let id = created.body["id"].as_str().unwrap();
    let location = created.header("location").unwrap();
    assert_eq!(location, format!("{}/Users/{id}", stack.scim_base()));
    assert_eq!(created.header("etag"), Some("W/\"1\""));
    assert_eq!(created.body["meta"]["resourceType"], "User");
    assert_eq!(created.body["meta"]["version"], "W/\"1\"");
    assert_eq!(created.body["meta"]["location"], location);
    assert_eq!(created.body["userName"], "ada@example.com");
    assert_eq!(created.body["active"], true);
    assert_eq!(created.body["emails"][0]["value"], "ada@example.com");

    let fetched = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(
        fetched.body, created.body,
        "a GET right after the 201 returns the new resource"
    );

    let projected = scim.get(&format!("/Users/{id}?attributes=userName")).await;
    assert_eq!(projected.body["userName"], "ada@example.com");
    assert!(projected.body.get("emails").is_none());
    assert_eq!(projected.body["id"], id);
    stack.stop().await;
}

#[tokio::test]
async fn user_name_is_unique_case_insensitively() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("unique").await;
    assert_eq!(
        scim.post("/Users", &user("Bob@Example.com", "b1"))
            .await
            .status,
        201
    );
    let duplicate = scim.post("/Users", &user("bob@example.COM", "b2")).await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(duplicate.body["scimType"], "uniqueness");
    assert_eq!(duplicate.body["status"], "409");
    assert!(
        duplicate.body["detail"]
            .as_str()
            .unwrap()
            .contains("bob@example.COM")
    );
    // The matching query finds the existing user whatever the case.
    let found = scim.get(&filter("userName eq \"BOB@example.com\"")).await;
    assert_eq!(found.body["totalResults"], 1);
    stack.stop().await;
}

#[tokio::test]
async fn matching_filters_answer_200_even_when_nothing_matches() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("filters").await;
    let created = scim.post("/Users", &user("cy@example.com", "cy-ext")).await;
    let id = created.body["id"].as_str().unwrap().to_owned();

    for (expression, expected) in [
        ("userName eq \"cy@example.com\"", 1),
        ("externalId eq \"cy-ext\"", 1),
        ("externalId eq \"CY-EXT\"", 0),
        (&format!("id eq \"{id}\""), 1),
        ("displayName eq \"display cy@example.com\"", 1),
        ("emails[type eq \"work\"].value eq \"cy@example.com\"", 1),
        (
            "userName eq \"cy@example.com\" and externalId eq \"cy-ext\"",
            1,
        ),
        (
            "userName eq \"cy@example.com\" and externalId eq \"other\"",
            0,
        ),
        ("userName eq \"nobody\" or externalId eq \"cy-ext\"", 1),
        ("userName sw \"cy\"", 1),
        ("name.familyName eq \"family\"", 1),
        ("not (userName eq \"cy@example.com\")", 0),
        ("userName eq \"8d7a1b43-0f3e-4c6a-9b8e-2f0e6c1d9a77\"", 0),
    ] {
        let reply = scim.get(&filter(expression)).await;
        assert_eq!(reply.status, 200, "{expression}: {}", reply.raw);
        assert_eq!(reply.body["totalResults"], expected, "{expression}");
        assert_eq!(
            reply.body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:ListResponse"
        );
        assert_eq!(reply.body["startIndex"], 1);
        assert_eq!(reply.body["Resources"].as_array().unwrap().len(), expected);
    }
    // Form-style encoding, as Entra sends it: '+' is a space.
    let plus = scim.get("/Users?filter=externalId+eq+%22cy-ext%22").await;
    assert_eq!(plus.body["totalResults"], 1);
    // An unknown bare flag is ignored.
    let flagged = scim
        .get("/Users?aadOptscim062020&filter=externalId+eq+%22cy-ext%22")
        .await;
    assert_eq!(flagged.status, 200);
    assert_eq!(flagged.body["totalResults"], 1);

    let invalid = scim.get(&filter("userName eq")).await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.body["scimType"], "invalidFilter");
    let invalid = scim.get(&filter("userName xx \"a\"")).await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.body["scimType"], "invalidFilter");
    stack.stop().await;
}

#[tokio::test]
async fn paging_is_one_based_with_correct_totals() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("paging").await;
    let mut ids = Vec::new();
    for index in 0..12 {
        let created = scim
            .post(
                "/Users",
                &user(&format!("u{index:02}@example.com"), &format!("e{index}")),
            )
            .await;
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    for page in 0..3 {
        let start = page * 5 + 1;
        let reply = scim
            .get(&format!("/Users?startIndex={start}&count=5"))
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["totalResults"], 12);
        assert_eq!(reply.body["startIndex"], start);
        let resources = reply.body["Resources"].as_array().unwrap();
        assert_eq!(resources.len(), if page < 2 { 5 } else { 2 });
        assert_eq!(reply.body["itemsPerPage"], resources.len());
        seen.extend(
            resources
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(seen, ids, "pages are stable and cover every user once");

    let totals_only = scim.get("/Users?count=0").await;
    assert_eq!(totals_only.body["totalResults"], 12);
    assert_eq!(totals_only.body["Resources"].as_array().unwrap().len(), 0);
    let past_the_end = scim.get("/Users?startIndex=100&count=5").await;
    assert_eq!(past_the_end.body["totalResults"], 12);
    assert_eq!(past_the_end.body["Resources"].as_array().unwrap().len(), 0);
    let below_one = scim.get("/Users?startIndex=0&count=2").await;
    assert_eq!(below_one.body["startIndex"], 1);
    let filtered_page = scim
        .get(&format!(
            "{}&startIndex=2&count=1",
            filter("userName sw \"u0\"")
        ))
        .await;
    assert_eq!(filtered_page.body["totalResults"], 10);
    assert_eq!(filtered_page.body["Resources"][0]["id"], ids[1]);
    let bad = scim.get("/Users?count=many").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["scimType"], "invalidValue");
    stack.stop().await;
}

#[tokio::test]
async fn put_replaces_and_delete_removes() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("put-delete").await;
    let created = scim.post("/Users", &user("dee@example.com", "dee")).await;
    let id = created.body["id"].as_str().unwrap().to_owned();

    let mut replacement = user("dee.renamed@example.com", "dee");
    replacement["title"] = json!("Engineer");
    let replaced = scim.put(&format!("/Users/{id}"), &replacement).await;
    assert_eq!(replaced.status, 200, "{}", replaced.raw);
    assert_eq!(replaced.body["id"], id.as_str(), "renaming keeps the id");
    assert_eq!(replaced.body["userName"], "dee.renamed@example.com");
    assert_eq!(replaced.body["title"], "Engineer");
    assert_eq!(replaced.header("etag"), Some("W/\"2\""));

    let stale = scim
        .send_raw(
            hyper::Method::PUT,
            &format!("/Users/{id}"),
            Some(replacement.to_string()),
            "application/json",
        )
        .await;
    assert_eq!(stale.status, 200, "application/json is accepted too");

    assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, 204);
    let gone = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["status"], "404");
    assert_eq!(scim.delete(&format!("/Users/{id}")).await.status, 404);
    assert_eq!(
        scim.put("/Users/missing", &user("x@example.com", "x"))
            .await
            .status,
        404
    );
    // A deleted userName can be used again.
    assert_eq!(
        scim.post("/Users", &user("dee.renamed@example.com", "dee"))
            .await
            .status,
        201
    );
    stack.stop().await;
}

#[tokio::test]
async fn bad_requests_are_scim_errors() {
    let stack = Stack::start_with(|config| config.scim.max_body_bytes = 4096).await;
    let (_, scim) = stack.tenant("bad").await;

    let no_user_name = scim.post("/Users", &json!({"active": true})).await;
    assert_eq!(no_user_name.status, 400);
    assert_eq!(no_user_name.body["scimType"], "invalidValue");
    assert!(
        no_user_name.body["detail"]
            .as_str()
            .unwrap()
            .contains("userName")
    );

    let not_json = scim
        .send_raw(
            hyper::Method::POST,
            "/Users",
            Some("{not json".to_owned()),
            "application/scim+json",
        )
        .await;
    assert_eq!(not_json.status, 400);
    assert_eq!(not_json.body["scimType"], "invalidSyntax");

    let wrong_type = scim
        .send_raw(
            hyper::Method::POST,
            "/Users",
            Some("userName=x".to_owned()),
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(wrong_type.status, 415);
    assert_eq!(wrong_type.body["status"], "415");

    let mut huge = user("big@example.com", "big");
    huge["title"] = json!("x".repeat(10_000));
    let too_large = scim.post("/Users", &huge).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.body["status"], "413");
    assert_eq!(
        too_large.header("content-type"),
        Some("application/scim+json")
    );

    let unknown_route = scim.get("/Devices").await;
    assert_eq!(unknown_route.status, 404);
    assert_eq!(
        unknown_route.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    let wrong_method = scim.send(hyper::Method::PATCH, "/Users", None).await;
    assert_eq!(wrong_method.status, 405);

    let bad_patch = scim
        .patch(
            "/Users/whatever",
            &json!({"Operations": [{"op": "frobnicate", "path": "active"}]}),
        )
        .await;
    assert_eq!(bad_patch.status, 400);
    assert_eq!(bad_patch.body["scimType"], "invalidSyntax");

    // Nothing rejected above was stored.
    let listed = scim.get("/Users").await;
    assert_eq!(listed.body["totalResults"], 0);
    stack.stop().await;
}

#[tokio::test]
async fn concurrent_creates_of_one_user_name_make_exactly_one_user() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("racing").await;
    let mut tasks = Vec::new();
    for index in 0..24 {
        let scim = scim.clone();
        // Same userName in varying case, plus distinct ones alongside.
        let name = if index % 2 == 0 {
            if index % 4 == 0 {
                "Race@Example.com".to_owned()
            } else {
                "race@example.COM".to_owned()
            }
        } else {
            format!("distinct{index}@example.com")
        };
        tasks.push(tokio::spawn(async move {
            scim.post("/Users", &user(&name, &format!("e{index}")))
                .await
                .status
        }));
    }
    let mut created = 0;
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap().as_u16() {
            201 => created += 1,
            409 => conflicts += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(
        (created, conflicts),
        (13, 11),
        "12 distinct users and one of the racing name"
    );
    let listed = scim.get("/Users?count=0").await;
    assert_eq!(listed.body["totalResults"], 13);
    stack.stop().await;
}
