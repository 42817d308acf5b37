//! How much of a user a read returns (`UserView`, AIP-157): the typed fields by default, the
//! document only for `USER_VIEW_BASIC`, which is what the SCIM gateway asks for, and its
//! answers are still whole.

use dirsync_proto::provisioner::v1 as pb;
use dirsync_tests::Stack;
use serde_json::json;

#[tokio::test]
async fn basic_reads_leave_out_the_typed_fields_and_nothing_else() {
    let stack = Stack::start().await;
    let (_, scim) = stack.tenant("views").await;
    let created = scim
        .post(
            "/Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ada@example.com",
                "name": {"givenName": "Ada", "familyName": "Lovelace"},
                "active": true
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.raw);
    let id = created.body["id"].as_str().unwrap().to_owned();

    let mut users = pb::user_service_client::UserServiceClient::new(stack.grpc.channel().await);
    let get = |view: pb::UserView| pb::GetUserRequest {
        tenant: "views".to_owned(),
        id: id.clone(),
        view: view.into(),
    };
    for view in [pb::UserView::Unspecified, pb::UserView::Full] {
        let user = users
            .get_user(get(view))
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        let fields = user.fields.unwrap_or_else(|| panic!("{view:?} has fields"));
        assert_eq!(fields.given_name, "Ada");
        assert_eq!(fields.user_name, "ada@example.com");
    }
    let basic = users
        .get_user(get(pb::UserView::Basic))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(basic.fields, None);
    assert_eq!(basic.id, id);
    assert!(basic.version > 0 && basic.create_time.is_some());
    let document: serde_json::Value = serde_json::from_str(&basic.scim_json).unwrap();
    assert_eq!(document["name"]["givenName"], "Ada");

    let list = |view: pb::UserView| pb::ListUsersRequest {
        tenant: "views".to_owned(),
        filter: "userName eq \"ADA@example.com\"".to_owned(),
        view: view.into(),
        ..Default::default()
    };
    let listed = users
        .list_users(list(pb::UserView::Basic))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.users.len(), 1);
    assert_eq!(listed.users[0].fields, None);
    assert_eq!(listed.users[0].scim_json, basic.scim_json);
    let listed = users
        .list_users(list(pb::UserView::Unspecified))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.users[0]
            .fields
            .as_ref()
            .map(|f| f.family_name.as_str()),
        Some("Lovelace")
    );

    // The gateway reads with the basic view; what Entra gets back is whole.
    let fetched = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(fetched.status, 200, "{}", fetched.raw);
    assert_eq!(fetched.body["name"]["givenName"], "Ada");
    assert_eq!(fetched.body["userName"], "ada@example.com");
    assert_eq!(fetched.body["id"], id.as_str());
    let matched = scim
        .get("/Users?filter=userName+eq+%22ada%40example.com%22")
        .await;
    assert_eq!(matched.status, 200, "{}", matched.raw);
    assert_eq!(matched.body["totalResults"], 1);
    assert_eq!(
        matched.body["Resources"][0]["name"]["familyName"],
        "Lovelace"
    );
}
