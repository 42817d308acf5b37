//! The client against the MaaS360 emulator, over real sockets.

use std::time::Duration;

use dirsync_emulators::maas360::{
    self as emu, Device, Distribution as EmuDistribution, EmulatorConfig, EmulatorHandle, Faults,
    Outage, PENDING_DELETION, RateLimitSettings, RetryAfterStyle, Seed, SeedGroup, SeedUser,
};
use dirsync_maas360::{
    AuthVersion, ClientOptions, Credentials, DeleteOutcome, Maas360Client, Maas360Error, NewUser,
    Secret, UserChanges, UserSearch,
};

fn credentials(base_url: &str, cfg: &EmulatorConfig) -> Credentials {
    Credentials {
        base_url: base_url.to_owned(),
        billing_id: cfg.billing_id.clone(),
        admin_user: cfg.admin_user.clone(),
        password: Secret::new(cfg.password.clone()),
        app_id: cfg.app_id.clone(),
        app_version: cfg.app_version.clone(),
        platform_id: cfg.platform_id.clone(),
        app_access_key: Secret::new(cfg.app_access_key.clone()),
    }
}

fn options(version: AuthVersion) -> ClientOptions {
    ClientOptions {
        auth_version: version,
        request_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

async fn emulator(config: EmulatorConfig, seed: Option<Seed>) -> EmulatorHandle {
    match emu::start(config, seed).await {
        Ok(handle) => handle,
        Err(error) => panic!("emulator did not start: {error}"),
    }
}

async fn setup(seed: Option<Seed>) -> (EmulatorHandle, Maas360Client) {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(cfg.clone(), seed).await;
    let client = client_for(&handle, &cfg, options(AuthVersion::V1));
    (handle, client)
}

fn client_for(handle: &EmulatorHandle, cfg: &EmulatorConfig, opts: ClientOptions) -> Maas360Client {
    match Maas360Client::new(credentials(&handle.base_url(), cfg), opts) {
        Ok(client) => client,
        Err(error) => panic!("client: {error}"),
    }
}

/// Requests the emulator saw on `route`, whatever their status.
fn seen(handle: &EmulatorHandle, route: &str) -> u64 {
    handle
        .request_counts()
        .get(route)
        .map_or(0, |by_status| by_status.values().sum())
}

fn seen_with(handle: &EmulatorHandle, route: &str, status: u16) -> u64 {
    handle
        .request_counts()
        .get(route)
        .and_then(|by_status| by_status.get(&status).copied())
        .unwrap_or(0)
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        user_name: name.to_owned(),
        domain: "contoso.com".to_owned(),
        email: format!("{name}@contoso.com"),
        full_name: format!("User {name}"),
    }
}

fn all_users() -> UserSearch {
    UserSearch {
        page_number: 1,
        page_size: 250,
        ..UserSearch::default()
    }
}

// ---- authentication ----

#[tokio::test]
async fn authenticates_with_v1_and_v2() {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(cfg.clone(), None).await;
    let v1 = client_for(&handle, &cfg, options(AuthVersion::V1));
    let v2 = client_for(&handle, &cfg, options(AuthVersion::V2));
    assert!(v1.authenticate().await.is_ok());
    assert!(v2.authenticate().await.is_ok());
    assert_eq!(seen_with(&handle, "auth_v1", 200), 1);
    assert_eq!(seen_with(&handle, "auth_v2", 200), 1);
    assert!(v1.search_users(&all_users()).await.is_ok());
    assert!(v2.search_users(&all_users()).await.is_ok());
    // The cached tokens were used: no further authentication.
    assert_eq!(seen(&handle, "auth_v1") + seen(&handle, "auth_v2"), 2);
    let counts = v1.call_counts();
    assert_eq!(
        counts.get(&("auth_v1".to_owned(), "200".to_owned())),
        Some(&1)
    );
    assert_eq!(
        counts.get(&("search_users".to_owned(), "200".to_owned())),
        Some(&1)
    );
    handle.stop().await;
}

#[tokio::test]
async fn refused_credentials_name_the_refused_part() {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(cfg.clone(), None).await;
    type Spoil = fn(&mut Credentials);
    let cases: [(&str, Spoil, &str); 5] = [
        (
            "password",
            |c| c.password = Secret::new("wrong"),
            "admin credentials",
        ),
        (
            "admin",
            |c| c.admin_user = "nobody".to_owned(),
            "admin credentials",
        ),
        (
            "billing",
            |c| c.billing_id = "99999999".to_owned(),
            "billing id",
        ),
        (
            "access key",
            |c| c.app_access_key = Secret::new("nope"),
            "app access key",
        ),
        (
            "app id",
            |c| c.app_id = "com.other.api".to_owned(),
            "app id",
        ),
    ];
    for version in [AuthVersion::V1, AuthVersion::V2] {
        for (what, spoil, expected_part) in cases {
            let mut creds = credentials(&handle.base_url(), &cfg);
            spoil(&mut creds);
            let client = match Maas360Client::new(creds, options(version)) {
                Ok(c) => c,
                Err(e) => panic!("{e}"),
            };
            match client.authenticate().await {
                Err(Maas360Error::Auth { part, detail, .. }) => {
                    assert_eq!(part, expected_part, "{what} with {version:?}: {detail}");
                    assert!(!detail.contains("wrong") && !detail.contains("nope"));
                }
                other => panic!("{what} with {version:?}: expected Auth, got {other:?}"),
            }
            // A resource call authenticates lazily and fails the same way, without retrying.
            let lazy = client.search_users(&all_users()).await;
            assert!(matches!(lazy, Err(Maas360Error::Auth { .. })), "{lazy:?}");
        }
    }
    assert_eq!(seen(&handle, "search_users"), 0);
    handle.stop().await;
}

#[tokio::test]
async fn errors_and_debug_output_never_show_secrets() {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(cfg.clone(), None).await;
    let mut creds = credentials(&handle.base_url(), &cfg);
    creds.password = Secret::new("super-secret-pw");
    let shown = format!("{creds:?}");
    assert!(!shown.contains("super-secret-pw") && !shown.contains(&cfg.app_access_key));
    let client = client_for(&handle, &cfg, options(AuthVersion::V1));
    let shown = format!("{client:?}");
    assert!(!shown.contains(&cfg.password));
    let bad = match Maas360Client::new(creds, options(AuthVersion::V1)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let error = bad.authenticate().await.err();
    let shown = format!(
        "{error:?} {}",
        error.as_ref().map(ToString::to_string).unwrap_or_default()
    );
    assert!(!shown.contains("super-secret-pw"), "{shown}");
    handle.stop().await;
}

#[tokio::test]
async fn token_is_renewed_before_it_expires() {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(cfg.clone(), None).await;
    // Due for renewal 1 ms after it is issued.
    let opts = ClientOptions {
        token_lifetime: Duration::from_secs(60),
        renew_before: Duration::from_millis(59_999),
        ..options(AuthVersion::V2)
    };
    let client = client_for(&handle, &cfg, opts);
    assert!(client.search_users(&all_users()).await.is_ok());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(client.search_users(&all_users()).await.is_ok());
    // Renewed through the refresh route, not by authenticating again.
    assert_eq!(seen_with(&handle, "auth_v2", 200), 1);
    assert_eq!(seen_with(&handle, "refresh_token", 200), 1);
    assert_eq!(seen_with(&handle, "search_users", 401), 0);
    let grants = handle.auth_grants();
    assert_eq!(grants.get("password"), Some(&1));
    assert_eq!(grants.get("refresh_token"), Some(&1), "{grants:?}");
    // The refresh request carried neither the password nor the access key.
    assert!(handle.violations().is_empty(), "{:?}", handle.violations());
    handle.stop().await;
}

#[tokio::test]
async fn v2_falls_back_to_the_password_when_the_refresh_token_is_refused() {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(cfg.clone(), None).await;
    let opts = ClientOptions {
        token_lifetime: Duration::from_secs(60),
        renew_before: Duration::from_millis(59_999),
        ..options(AuthVersion::V2)
    };
    let client = client_for(&handle, &cfg, opts);
    assert!(client.search_users(&all_users()).await.is_ok());
    handle.expire_refresh_tokens();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(client.search_users(&all_users()).await.is_ok());
    // First password, then a refused refresh, then the password again.
    assert_eq!(seen(&handle, "auth_v2"), 2);
    assert_eq!(seen(&handle, "refresh_token"), 1);
    assert_eq!(handle.auth_grants().get("password"), Some(&2));
    assert_eq!(handle.auth_grants().get("refresh_token"), None);
    handle.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_renewed_once_on_401_and_the_call_succeeds() {
    for version in [AuthVersion::V1, AuthVersion::V2] {
        let cfg = EmulatorConfig::for_tests();
        let handle = emulator(cfg.clone(), None).await;
        let client = client_for(&handle, &cfg, options(version));
        assert!(client.search_users(&all_users()).await.is_ok());
        handle.expire_tokens();
        let again = client.search_users(&all_users()).await;
        assert!(again.is_ok(), "{again:?}");
        // One renewal: auth 1.0 authenticates again, 2.0 refreshes.
        let renewals = if version == AuthVersion::V1 {
            seen(&handle, "auth_v1") - 1
        } else {
            assert_eq!(seen(&handle, "auth_v2"), 1);
            seen(&handle, "refresh_token")
        };
        assert_eq!(renewals, 1);
        assert_eq!(seen_with(&handle, "search_users", 401), 1);
        assert_eq!(seen_with(&handle, "search_users", 200), 2);
        handle.stop().await;
    }
}

#[tokio::test]
async fn a_token_refused_after_renewal_is_an_auth_error_after_one_retry() {
    // Every token expires the moment it is issued: the renewed one is refused too.
    let cfg = EmulatorConfig {
        token_ttl: Duration::ZERO,
        ..EmulatorConfig::for_tests()
    };
    let handle = emulator(cfg.clone(), None).await;
    let client = client_for(&handle, &cfg, options(AuthVersion::V1));
    match client.search_users(&all_users()).await {
        Err(Maas360Error::Auth {
            part,
            detail,
            status,
        }) => {
            assert_eq!(part, "token");
            assert_eq!(status, Some(401));
            assert!(detail.contains("Token expired."), "{detail}");
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    assert_eq!(
        seen_with(&handle, "search_users", 401),
        2,
        "one retry, no more"
    );
    assert_eq!(seen(&handle, "auth_v1"), 2);
    handle.stop().await;
}

#[tokio::test]
async fn a_missing_refresh_route_falls_back_to_full_authentication() {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(cfg.clone(), None).await;
    let moved = handle.move_route(
        "refresh_token",
        "/auth-apis/auth/2.0/renew/customer/{billingID}",
    );
    assert!(moved.is_ok(), "{moved:?}");
    let client = client_for(&handle, &cfg, options(AuthVersion::V2));
    assert!(client.search_users(&all_users()).await.is_ok());
    handle.expire_tokens();
    let again = client.search_users(&all_users()).await;
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(
        seen_with(&handle, "unmatched", 404),
        1,
        "the refresh was tried"
    );
    assert_eq!(handle.auth_grants().get("password"), Some(&2));
    // Asked directly, the refresh route reports what is wrong with it.
    match client.refresh_token().await {
        Err(Maas360Error::Permanent { status, detail }) => {
            assert_eq!(status, Some(404));
            assert!(detail.contains("refreshToken"), "{detail}");
        }
        other => panic!("expected Permanent 404, got {other:?}"),
    }
    handle.stop().await;
}

#[tokio::test]
async fn the_token_travels_in_single_quotes_and_refresh_is_v2_only() {
    let (handle, client) = setup(None).await;
    assert!(client.search_users(&all_users()).await.is_ok());
    assert_eq!(
        handle.authorization_styles(),
        [("single".to_owned(), 1)].into()
    );
    assert!(matches!(
        client.refresh_token().await,
        Err(Maas360Error::Config(_))
    ));
    handle.stop().await;
}

#[tokio::test]
async fn concurrent_calls_share_one_authentication() {
    let (handle, client) = setup(None).await;
    let run_many = |client: Maas360Client| async move {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let client = client.clone();
            set.spawn(async move { client.search_users(&all_users()).await.map(|_| ()) });
        }
        let mut ok = 0;
        while let Some(joined) = set.join_next().await {
            if matches!(joined, Ok(Ok(()))) {
                ok += 1;
            }
        }
        ok
    };
    assert_eq!(run_many(client.clone()).await, 32);
    assert_eq!(seen(&handle, "auth_v1"), 1);

    // All 32 now hit a 401 at about the same time; still only one renewal.
    handle.expire_tokens();
    assert_eq!(run_many(client.clone()).await, 32);
    assert_eq!(seen(&handle, "auth_v1"), 2);
    assert!(seen_with(&handle, "search_users", 401) >= 1);
    handle.stop().await;
}

#[tokio::test]
async fn a_refused_password_is_tried_once_for_many_waiting_callers() {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(cfg.clone(), None).await;
    let mut creds = credentials(&handle.base_url(), &cfg);
    creds.password = Secret::new("wrong");
    let client = match Maas360Client::new(creds, options(AuthVersion::V1)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let client = client.clone();
        set.spawn(async move { client.search_users(&all_users()).await.map(|_| ()) });
    }
    while let Some(joined) = set.join_next().await {
        assert!(matches!(joined, Ok(Err(Maas360Error::Auth { .. }))));
    }
    // Waiters that queued behind the failed attempt share its error instead of retrying it.
    assert_eq!(seen(&handle, "auth_v1"), 1, "{:?}", handle.request_counts());
    handle.stop().await;
}

// ---- users ----

#[tokio::test]
async fn user_lifecycle() {
    let (handle, client) = setup(None).await;
    let id = match client.add_user(&new_user("jdoe")).await {
        Ok(id) => id,
        Err(e) => panic!("add: {e}"),
    };
    assert!(!id.is_empty());

    let found = client.find_user("JDOE", "Contoso.com").await;
    let Ok(Some(user)) = found else {
        panic!("find: {found:?}")
    };
    assert_eq!(user.user_identifier, id);
    assert_eq!(user.email, "jdoe@contoso.com");
    assert_eq!(user.full_name, "User jdoe");
    assert_eq!(user.status, "Active");

    let changes = UserChanges {
        email: Some("jane@contoso.com".to_owned()),
        full_name: Some("Jane Doe".to_owned()),
        ..UserChanges::default()
    };
    assert!(client.edit_user(&id, &changes).await.is_ok());
    assert!(client.edit_user(&id, &UserChanges::default()).await.is_ok());
    let state = handle.state();
    let dumped = state.user("jdoe", "contoso.com");
    assert_eq!(dumped.map(|u| u.email.as_str()), Some("jane@contoso.com"));
    assert_eq!(dumped.map(|u| u.full_name.as_str()), Some("Jane Doe"));

    // A renamed UPN keeps the same MaaS360 user (and its devices).
    let rename = UserChanges {
        user_name: Some("jane".to_owned()),
        ..UserChanges::default()
    };
    assert!(client.edit_user(&id, &rename).await.is_ok());
    let renamed = handle.state();
    assert_eq!(
        renamed
            .user("jane", "contoso.com")
            .map(|u| u.user_identifier.as_str()),
        Some(id.as_str())
    );
    assert!(renamed.user("jdoe", "contoso.com").is_none());
    let back = UserChanges {
        user_name: Some("jdoe".to_owned()),
        ..UserChanges::default()
    };
    assert!(client.edit_user(&id, &back).await.is_ok());

    assert!(client.deactivate_user(&id).await.is_ok());
    let found = client.find_user("jdoe", "contoso.com").await;
    assert_eq!(
        found.ok().flatten().map(|u| u.status),
        Some("Inactive".to_owned())
    );
    assert!(client.reactivate_user(&id).await.is_ok());
    let state = handle.state();
    assert_eq!(
        state.user("jdoe", "contoso.com").map(|u| u.status.as_str()),
        Some("Active")
    );

    // Deleting is queued for MaaS360's daily job: the user stays visible until it runs.
    assert_eq!(
        client.delete_user(&id).await.ok(),
        Some(DeleteOutcome::Queued)
    );
    let pending = client.find_user("jdoe", "contoso.com").await;
    assert_eq!(
        pending.ok().flatten().map(|u| u.status),
        Some(PENDING_DELETION.to_owned())
    );
    assert_eq!(handle.state().pending_deletions().len(), 1);
    assert_eq!(
        client.delete_user(&id).await.ok(),
        Some(DeleteOutcome::Queued),
        "asking again changes nothing"
    );
    assert_eq!(handle.run_deletion_job(), 1);
    assert!(matches!(
        client.find_user("jdoe", "contoso.com").await,
        Ok(None)
    ));
    assert!(handle.state().users.is_empty());
    let again = client.delete_user(&id).await;
    assert!(
        matches!(again, Err(Maas360Error::NotFound { .. })),
        "{again:?}"
    );
    handle.stop().await;
}

#[tokio::test]
async fn deletion_is_done_at_once_when_the_job_runs_without_delay() {
    let cfg = EmulatorConfig {
        deletion_job_after: Some(Duration::ZERO),
        ..EmulatorConfig::for_tests()
    };
    let handle = emulator(cfg.clone(), None).await;
    let client = client_for(&handle, &cfg, options(AuthVersion::V1));
    let id = client
        .add_user(&new_user("quick"))
        .await
        .unwrap_or_default();
    assert_eq!(
        client.delete_user(&id).await.ok(),
        Some(DeleteOutcome::Deleted)
    );
    assert!(handle.state().users.is_empty());
    handle.stop().await;
}

fn seed_with_devices() -> Seed {
    Seed {
        users: vec![
            SeedUser {
                user_identifier: Some("U-PHONE".to_owned()),
                user_name: "pat".to_owned(),
                domain: "contoso.com".to_owned(),
                email: "pat@contoso.com".to_owned(),
                devices: vec![
                    Device {
                        csn: "CSN-1".to_owned(),
                        platform: "iOS".to_owned(),
                        active: true,
                    },
                    Device {
                        csn: "CSN-2".to_owned(),
                        platform: "Android".to_owned(),
                        active: false,
                    },
                ],
                ..SeedUser::default()
            },
            SeedUser {
                user_identifier: Some("U-PLAIN".to_owned()),
                user_name: "lee".to_owned(),
                domain: "contoso.com".to_owned(),
                email: "lee@contoso.com".to_owned(),
                ..SeedUser::default()
            },
        ],
        groups: vec![SeedGroup {
            group_identifier: Some("6001".to_owned()),
            name: "Nurses".to_owned(),
            apps: vec![dist("com.contoso.ward", "Ward App", "iOS")],
            policies: vec![dist("p9", "Clinical Policy", "iOS")],
            members: vec!["pat".to_owned(), "lee".to_owned()],
            ..SeedGroup::default()
        }],
    }
}

#[tokio::test]
async fn a_user_with_an_active_device_is_not_deleted() {
    let (handle, client) = setup(Some(seed_with_devices())).await;
    match client.delete_user("U-PHONE").await {
        Err(Maas360Error::ActiveDevice { detail, status }) => {
            assert_eq!(status, Some(200));
            assert!(detail.contains("active device"), "{detail}");
        }
        other => panic!("expected ActiveDevice, got {other:?}"),
    }
    assert!(handle.state().pending_deletions().is_empty());
    // Once the device is retired, the deletion is accepted (and queued).
    let retired = handle.set_devices(
        "U-PHONE",
        vec![Device {
            csn: "CSN-1".to_owned(),
            platform: "iOS".to_owned(),
            active: false,
        }],
    );
    assert!(retired.is_ok(), "{retired:?}");
    assert_eq!(
        client.delete_user("U-PHONE").await.ok(),
        Some(DeleteOutcome::Queued)
    );
    handle.stop().await;
}

#[tokio::test]
async fn deactivation_keeps_the_user_and_reactivation_restores_its_distributions() {
    let (handle, client) = setup(Some(seed_with_devices())).await;
    let distributions = |handle: &EmulatorHandle| {
        handle
            .state()
            .users
            .into_iter()
            .find(|u| u.user_identifier == "U-PLAIN")
            .map(|u| (u.status, u.distributions))
    };
    let full = vec!["app:com.contoso.ward".to_owned(), "policy:p9".to_owned()];
    assert_eq!(
        distributions(&handle),
        Some(("Active".to_owned(), full.clone()))
    );
    assert!(client.deactivate_user("U-PLAIN").await.is_ok());
    assert_eq!(
        distributions(&handle),
        Some(("Inactive".to_owned(), Vec::new())),
        "kept, without its distributions"
    );
    let members = client.users_in_group("6001", 1, 25).await;
    assert_eq!(members.map(|p| p.total).ok(), Some(2), "still a member");
    assert!(client.reactivate_user("U-PLAIN").await.is_ok());
    assert_eq!(distributions(&handle), Some(("Active".to_owned(), full)));
    handle.stop().await;
}

#[tokio::test]
async fn add_user_copes_without_a_user_identifier_in_the_answer() {
    let cfg = EmulatorConfig {
        add_user_returns_identifier: false,
        ..EmulatorConfig::for_tests()
    };
    let handle = emulator(cfg.clone(), None).await;
    let client = client_for(&handle, &cfg, options(AuthVersion::V1));
    let id = match client.add_user(&new_user("noid")).await {
        Ok(id) => id,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        handle
            .state()
            .user("noid", "contoso.com")
            .map(|u| u.user_identifier.clone()),
        Some(id)
    );
    // One add, one lookup by user name and domain.
    assert_eq!(seen(&handle, "add_user"), 1);
    assert_eq!(seen(&handle, "search_users"), 1);
    handle.stop().await;
}

#[tokio::test]
async fn adding_an_existing_user_is_already_exists() {
    let (handle, client) = setup(None).await;
    assert!(client.add_user(&new_user("amy")).await.is_ok());
    let mut twin = new_user("AMY");
    twin.domain = "CONTOSO.COM".to_owned();
    let again = client.add_user(&twin).await;
    assert!(
        matches!(again, Err(Maas360Error::AlreadyExists { .. })),
        "{again:?}"
    );
    // Same name in another domain is a different user.
    let mut other = new_user("amy");
    other.domain = "fabrikam.com".to_owned();
    other.email = "amy@fabrikam.com".to_owned();
    assert!(client.add_user(&other).await.is_ok());
    assert_eq!(handle.state().users.len(), 2);
    handle.stop().await;
}

#[tokio::test]
async fn a_failure_action_response_is_permanent_with_its_description() {
    let (handle, client) = setup(None).await;
    let mut bad = new_user("bob");
    bad.email = "not-an-email".to_owned();
    match client.add_user(&bad).await {
        Err(Maas360Error::Permanent { status, detail }) => {
            assert_eq!(status, Some(200));
            assert!(detail.contains("Invalid email"), "{detail}");
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
    let missing = client
        .edit_user(
            "NO-SUCH-USER",
            &UserChanges {
                email: Some("x@y.z".to_owned()),
                ..UserChanges::default()
            },
        )
        .await;
    assert!(
        matches!(missing, Err(Maas360Error::NotFound { .. })),
        "{missing:?}"
    );
    let empty = client.deactivate_user("").await;
    assert!(matches!(
        empty,
        Err(Maas360Error::Permanent { status: None, .. })
    ));
    handle.stop().await;
}

#[tokio::test]
async fn search_filters_and_rounds_page_sizes() {
    let (handle, client) = setup(None).await;
    for name in ["alice", "alina", "bob"] {
        assert!(client.add_user(&new_user(name)).await.is_ok());
    }
    let query = UserSearch {
        partial_user_name: Some("ali".to_owned()),
        page_number: 0,
        page_size: 30,
        ..UserSearch::default()
    };
    let page = match client.search_users(&query).await {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.total, 2);
    assert_eq!(page.page_size, 50);
    assert_eq!(page.page_number, 1);
    let exact = UserSearch {
        exact: true,
        ..query.clone()
    };
    assert_eq!(
        client.search_users(&exact).await.map(|p| p.total).ok(),
        Some(0)
    );
    let by_email = UserSearch {
        email: Some("bob@".to_owned()),
        ..all_users()
    };
    let page = client.search_users(&by_email).await;
    assert_eq!(page.map(|p| p.items.len()).ok(), Some(1));
    handle.stop().await;
}

// ---- groups and memberships ----

#[tokio::test]
async fn groups_and_memberships() {
    let (handle, client) = setup(None).await;
    let uid = match client.add_user(&new_user("carol")).await {
        Ok(id) => id,
        Err(e) => panic!("{e}"),
    };
    let sales = client.create_user_group("Sales").await;
    let drivers = client.create_user_group("Drivers").await;
    let (Ok(sales), Ok(drivers)) = (sales, drivers) else {
        panic!("create groups")
    };
    let dup = client.create_user_group("sales").await;
    assert!(
        matches!(dup, Err(Maas360Error::AlreadyExists { .. })),
        "{dup:?}"
    );

    let both = vec![sales.clone(), drivers.clone()];
    assert!(client.add_user_to_groups(&uid, &both).await.is_ok());
    assert!(
        client.add_user_to_groups(&uid, &both).await.is_ok(),
        "idempotent"
    );
    assert!(client.add_user_to_groups(&uid, &[]).await.is_ok());
    let state = handle.state();
    assert_eq!(state.members(&sales), vec![uid.clone()]);
    assert_eq!(state.members(&drivers), vec![uid.clone()]);
    let user = client
        .find_user("carol", "contoso.com")
        .await
        .ok()
        .flatten();
    let mut names: Vec<String> = user
        .map(|u| u.groups.into_iter().map(|g| g.name).collect())
        .unwrap_or_default();
    names.sort();
    assert_eq!(names, vec!["Drivers".to_owned(), "Sales".to_owned()]);

    assert!(
        client
            .remove_user_from_groups(&uid, std::slice::from_ref(&sales))
            .await
            .is_ok()
    );
    let page = client.users_in_group(&sales, 1, 25).await;
    assert_eq!(page.map(|p| p.total).ok(), Some(0));
    let page = client.users_in_group(&drivers, 1, 25).await;
    assert_eq!(
        page.ok().map(|p| p
            .items
            .into_iter()
            .map(|u| u.user_identifier)
            .collect::<Vec<_>>()),
        Some(vec![uid.clone()])
    );

    let unknown = client
        .add_user_to_groups(&uid, &["424242".to_owned()])
        .await;
    assert!(
        matches!(unknown, Err(Maas360Error::NotFound { .. })),
        "{unknown:?}"
    );

    assert!(client.delete_user_group(&drivers).await.is_ok());
    assert!(handle.state().group("Drivers").is_none());
    let again = client.delete_user_group(&drivers).await;
    assert!(
        matches!(again, Err(Maas360Error::NotFound { .. })),
        "{again:?}"
    );
    let gone = client.users_in_group(&drivers, 1, 25).await;
    assert!(
        matches!(gone, Err(Maas360Error::NotFound { .. })),
        "{gone:?}"
    );
    handle.stop().await;
}

fn dist(id: &str, name: &str, platform: &str) -> EmuDistribution {
    EmuDistribution {
        id: id.to_owned(),
        name: name.to_owned(),
        platform: platform.to_owned(),
        ..EmuDistribution::default()
    }
}

fn seed_with_groups(members: usize) -> Seed {
    let users: Vec<SeedUser> = (0..members)
        .map(|i| SeedUser {
            user_name: format!("user{i:03}"),
            domain: "contoso.com".to_owned(),
            email: format!("user{i:03}@contoso.com"),
            full_name: format!("User {i}"),
            ..SeedUser::default()
        })
        .collect();
    let member_names = users.iter().map(|u| u.user_name.clone()).collect();
    Seed {
        users,
        groups: vec![
            SeedGroup {
                group_identifier: Some("5001".to_owned()),
                name: "Field Staff".to_owned(),
                apps: vec![dist("com.contoso.field", "Field App", "iOS")],
                policies: vec![
                    dist("p1", "iOS Baseline", "iOS"),
                    dist("p2", "Android Baseline", "Android"),
                ],
                members: member_names,
                ..SeedGroup::default()
            },
            SeedGroup {
                name: "Kiosks".to_owned(),
                group_type: Some(1),
                category: Some("Private".to_owned()),
                ..SeedGroup::default()
            },
        ],
    }
}

/// User groups (type 3) next to device groups of each kind (0–2), with 0, 1 and many members.
fn seed_with_mixed_groups() -> Seed {
    let mut seed = seed_with_groups(30);
    for (name, kind) in [("Lobby iPads", 0), ("Warehouse scanners", 2)] {
        seed.groups.push(SeedGroup {
            name: name.to_owned(),
            group_type: Some(kind),
            ..SeedGroup::default()
        });
    }
    seed.groups.push(SeedGroup {
        group_identifier: Some("5002".to_owned()),
        name: "Solo".to_owned(),
        members: vec!["user007".to_owned()],
        ..SeedGroup::default()
    });
    seed.groups.push(SeedGroup {
        group_identifier: Some("5003".to_owned()),
        name: "Nobody Yet".to_owned(),
        category: Some("Private".to_owned()),
        ..SeedGroup::default()
    });
    seed
}

#[tokio::test]
async fn lists_groups_with_their_distributions() {
    let (handle, client) = setup(Some(seed_with_groups(3))).await;
    let page = match client.list_groups(1, 100).await {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(page.total, 2);
    assert_eq!(page.page_size, 100);
    let field = page.items.iter().find(|g| g.name == "Field Staff");
    let Some(field) = field else {
        panic!("no Field Staff in {page:?}")
    };
    assert_eq!(field.group_identifier, "5001");
    // Numeric, and a string under the XML-to-JSON habits.
    assert_eq!(field.group_type, "3");
    assert_eq!(field.type_code(), Some(3));
    assert_eq!(field.category, "Public");
    // One app: arrives as a one-element object under the XML-to-JSON habits.
    assert_eq!(field.app_distributions.len(), 1);
    assert_eq!(field.app_distributions[0].id, "com.contoso.field");
    assert_eq!(field.app_distributions[0].platform, "iOS");
    assert_eq!(field.policy_distributions.len(), 2);
    let kiosks = page.items.iter().find(|g| g.name == "Kiosks");
    assert_eq!(kiosks.and_then(|g| g.type_code()), Some(1));
    assert_eq!(kiosks.map(|g| g.app_distributions.len()), Some(0));
    handle.stop().await;
}

#[tokio::test]
async fn a_groups_apps_and_policies_are_copied_onto_another_group_once() {
    let mut seed = seed_with_groups(2);
    seed.groups[0].apps[0].app_type = "2".to_owned();
    let (handle, client) = setup(Some(seed)).await;
    let copy = client
        .create_user_group("Field Staff (Entra)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let source = client
        .list_groups(1, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .items
        .into_iter()
        .find(|g| g.name == "Field Staff")
        .unwrap_or_else(|| panic!("no Field Staff"));
    assert_eq!(source.app_distributions[0].app_type, "2");
    for _ in 0..2 {
        // Twice: a resumed migration repeats a step, and nothing doubles.
        for app in &source.app_distributions {
            client
                .distribute_app_to_group(&copy, app)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        for platform in ["iOS", "Android"] {
            let names: Vec<String> = source
                .policy_distributions
                .iter()
                .filter(|p| p.platform == platform)
                .map(|p| p.name.clone())
                .collect();
            client
                .set_group_policies(&copy, platform, &names)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let held = handle.state();
    let copied = held
        .group("Field Staff (Entra)")
        .unwrap_or_else(|| panic!("no copy in {held:?}"));
    assert_eq!(copied.apps.len(), 1);
    assert_eq!(copied.apps[0].id, "com.contoso.field");
    assert_eq!(
        copied.apps[0].name, "Field App",
        "a known app keeps its name"
    );
    let mut policies: Vec<(&str, &str)> = copied
        .policies
        .iter()
        .map(|p| (p.id.as_str(), p.platform.as_str()))
        .collect();
    policies.sort_unstable();
    assert_eq!(policies, vec![("p1", "iOS"), ("p2", "Android")]);
    assert_eq!(seen(&handle, "distribute_app"), 2);
    assert_eq!(seen(&handle, "change_group_policy"), 4);

    // An app without its type cannot be distributed: refused before any call.
    let untyped = dirsync_maas360::Distribution {
        id: "com.contoso.other".to_owned(),
        ..Default::default()
    };
    let refused = client.distribute_app_to_group(&copy, &untyped).await;
    assert!(
        matches!(refused, Err(Maas360Error::Permanent { .. })),
        "{refused:?}"
    );
    // A group MaaS360 does not have: the failure says so.
    let missing = client
        .distribute_app_to_group("999999", &source.app_distributions[0])
        .await;
    assert!(missing.is_err(), "{missing:?}");
    handle.stop().await;
}

#[tokio::test]
async fn lists_user_groups_only_with_their_member_counts() {
    for quirks in [true, false] {
        let cfg = EmulatorConfig {
            one_element_as_object: quirks,
            ..EmulatorConfig::for_tests()
        };
        let handle = emulator(cfg.clone(), Some(seed_with_mixed_groups())).await;
        let client = client_for(&handle, &cfg, options(AuthVersion::V1));
        let groups = match client.list_user_groups().await {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        };
        let mut counts: Vec<(&str, u64)> = groups
            .iter()
            .map(|g| (g.group.name.as_str(), g.member_count))
            .collect();
        counts.sort_unstable();
        assert_eq!(
            counts,
            vec![("Field Staff", 30), ("Nobody Yet", 0), ("Solo", 1)],
            "quirks={quirks}: only type 3, device groups 0-2 left out"
        );
        let nobody = groups.iter().find(|g| g.group.name == "Nobody Yet");
        assert_eq!(nobody.map(|g| g.group.category.as_str()), Some("Private"));
        let field = groups.iter().find(|g| g.group.name == "Field Staff");
        assert_eq!(field.map(|g| g.group.app_distributions.len()), Some(1));
        // One list call, one smallest-page member count per user group.
        assert_eq!(seen(&handle, "list_groups"), 1);
        assert_eq!(seen(&handle, "users_in_group"), 3);
        // searchByGroup with a single member answers it as an object, read as a list of one.
        let solo = client.users_in_group("5002", 1, 25).await;
        assert_eq!(
            solo.map(|p| p.items.into_iter().map(|u| u.user_name).collect::<Vec<_>>())
                .ok(),
            Some(vec!["user007".to_owned()])
        );
        handle.stop().await;
    }

    // A tenant whose user groups carry another code.
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(cfg.clone(), Some(seed_with_mixed_groups())).await;
    let opts = ClientOptions {
        user_group_type: 2,
        ..options(AuthVersion::V1)
    };
    let client = client_for(&handle, &cfg, opts);
    let names: Vec<String> = client
        .list_user_groups()
        .await
        .map(|groups| groups.into_iter().map(|g| g.group.name).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["Warehouse scanners".to_owned()]);
    handle.stop().await;
}

#[tokio::test]
async fn users_in_group_pages_through_every_member() {
    let (handle, client) = setup(Some(seed_with_groups(60))).await;
    let mut seen_ids = std::collections::BTreeSet::new();
    let mut page_number = 1;
    loop {
        let page = match client.users_in_group("5001", page_number, 25).await {
            Ok(p) => p,
            Err(e) => panic!("page {page_number}: {e}"),
        };
        assert_eq!(page.total, 60);
        assert_eq!(page.page_size, 25);
        let expected = if page_number < 3 { 25 } else { 10 };
        assert_eq!(page.items.len(), expected, "page {page_number}");
        for user in &page.items {
            assert!(
                seen_ids.insert(user.user_identifier.clone()),
                "duplicate across pages"
            );
        }
        if !page.has_more() {
            break;
        }
        page_number += 1;
        assert!(page_number <= 3, "paging did not end");
    }
    assert_eq!(seen_ids.len(), 60);
    // A size that is not allowed is rounded up instead of being refused.
    let page = client.users_in_group("5001", 1, 40).await;
    assert_eq!(
        page.map(|p| (p.page_size, p.items.len())).ok(),
        Some((50, 50))
    );
    assert_eq!(seen_with(&handle, "users_in_group", 400), 0);
    handle.stop().await;
}

#[tokio::test]
async fn parses_both_the_quirky_and_the_plain_json() {
    for quirks in [true, false] {
        let cfg = EmulatorConfig {
            one_element_as_object: quirks,
            ..EmulatorConfig::for_tests()
        };
        let handle = emulator(cfg.clone(), Some(seed_with_groups(1))).await;
        let client = client_for(&handle, &cfg, options(AuthVersion::V2));
        let user = client.find_user("user000", "contoso.com").await;
        let Ok(Some(user)) = user else {
            panic!("quirks={quirks}: {user:?}")
        };
        assert_eq!(user.groups.len(), 1, "quirks={quirks}");
        assert_eq!(user.groups[0].group_identifier, "5001");
        let page = client.users_in_group("5001", 1, 25).await;
        assert_eq!(
            page.map(|p| (p.total, p.items.len())).ok(),
            Some((1, 1)),
            "quirks={quirks}"
        );
        handle.stop().await;
    }
}

// ---- faults ----

#[tokio::test]
async fn throttling_is_rate_limited_with_retry_after() {
    let (handle, client) = setup(None).await;
    handle.set_faults(Faults {
        rate_limit_per_minute: 1,
        ..Faults::default()
    });
    assert!(client.search_users(&all_users()).await.is_ok());
    let throttled = client.search_users(&all_users()).await;
    match throttled {
        Err(ref e @ Maas360Error::RateLimited { .. }) => {
            assert!(e.is_retryable() && e.is_rate_limited());
            let after = e.retry_after();
            assert!(
                after.is_some_and(|d| d >= Duration::from_secs(1)),
                "{after:?}"
            );
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(seen_with(&handle, "search_users", 429), 1);
    handle.stop().await;
}

fn limited(per_minute: u32) -> Faults {
    Faults {
        rate_limit_per_minute: per_minute,
        ..Faults::default()
    }
}

#[tokio::test]
async fn rate_limit_headers_tell_the_client_when_it_is_throttled() {
    let (handle, client) = setup(None).await;
    handle.set_faults(limited(3));
    assert!(client.authenticate().await.is_ok());
    assert_eq!(
        client.rate_limit().remaining,
        Some(3),
        "auth answers carry them too"
    );
    for left in [2, 1] {
        assert!(client.search_users(&all_users()).await.is_ok());
        assert_eq!(client.rate_limit().remaining, Some(left));
        assert_eq!(client.throttled_until(), None);
    }
    let before = tokio::time::Instant::now();
    assert!(client.search_users(&all_users()).await.is_ok());
    // The call that used the last request succeeded, and its headers say: stop until the
    // window resets (within the minute the emulator counts).
    let status = client.rate_limit();
    assert_eq!(status.remaining, Some(0));
    let window = status.reset_window.unwrap_or_default();
    assert!(
        window > Duration::ZERO && window <= Duration::from_secs(60),
        "{window:?}"
    );
    let until = client.throttled_until();
    assert!(
        until.is_some_and(|t| t > before && t <= before + Duration::from_secs(61)),
        "{until:?}"
    );
    assert_eq!(seen_with(&handle, "search_users", 429), 0);
    handle.stop().await;
}

#[tokio::test]
async fn a_429_with_an_http_date_retry_after_is_read() {
    let (handle, client) = setup(None).await;
    handle.set_rate_limit_settings(RateLimitSettings {
        retry_after: RetryAfterStyle::HttpDate,
        ..RateLimitSettings::default()
    });
    handle.set_faults(limited(1));
    assert!(client.search_users(&all_users()).await.is_ok());
    let throttled = client.search_users(&all_users()).await;
    let wait = match &throttled {
        Err(e @ Maas360Error::RateLimited { status, .. }) => {
            assert_eq!(*status, Some(429));
            e.retry_after()
        }
        other => panic!("expected RateLimited, got {other:?}"),
    };
    // The date is whole seconds, rounded up past the end of the emulator's minute.
    assert!(
        wait.is_some_and(|w| w > Duration::ZERO && w <= Duration::from_secs(62)),
        "{wait:?}"
    );
    assert!(client.throttled_until().is_some());

    // Without Retry-After, the reset window says how long.
    handle.set_rate_limit_settings(RateLimitSettings {
        retry_after: RetryAfterStyle::Omitted,
        ..RateLimitSettings::default()
    });
    let again = client.search_users(&all_users()).await;
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.is_rate_limited() && e.retry_after().is_some()),
        "{again:?}"
    );
    handle.stop().await;
}

#[tokio::test]
async fn a_limit_shown_only_in_headers_still_throttles() {
    let (handle, client) = setup(None).await;
    handle.set_rate_limit_settings(RateLimitSettings {
        reject: false,
        ..RateLimitSettings::default()
    });
    handle.set_faults(limited(1));
    for _ in 0..3 {
        assert!(client.search_users(&all_users()).await.is_ok());
        assert_eq!(client.rate_limit().remaining, Some(0));
        assert!(client.throttled_until().is_some());
    }
    assert_eq!(seen_with(&handle, "search_users", 200), 3);
    handle.stop().await;
}

#[tokio::test]
async fn server_errors_and_outages_are_retryable() {
    let (handle, client) = setup(None).await;
    assert!(client.authenticate().await.is_ok());
    // A rate limit is set, so every answer carries X-Rate-Limit-ResetWindow: a server error
    // must still not be read as "wait for the window".
    handle.set_faults(Faults {
        fault_rate: 1.0,
        seed: 3,
        rate_limit_per_minute: 10_000,
        ..Faults::default()
    });
    for _ in 0..5 {
        let failed = client.list_groups(1, 25).await;
        assert!(
            matches!(
                failed,
                Err(Maas360Error::Retryable {
                    retry_after: None,
                    ..
                })
            ),
            "{failed:?}"
        );
    }
    handle.set_faults(Faults {
        outage: Some(Outage {
            starts_after: Duration::ZERO,
            lasts: Duration::from_secs(600),
        }),
        ..Faults::default()
    });
    let down = client.list_groups(1, 25).await;
    assert!(
        down.as_ref().is_err_and(Maas360Error::is_retryable),
        "{down:?}"
    );
    handle.set_faults(Faults::default());
    assert!(client.list_groups(1, 25).await.is_ok());
    handle.stop().await;
}

/// Half of the injected errors apply the change first, so a create that "failed" may exist;
/// the retry then reports AlreadyExists and the caller adopts.
#[tokio::test]
async fn lost_responses_can_be_adopted() {
    let (handle, client) = setup(None).await;
    assert!(client.authenticate().await.is_ok());
    handle.set_faults(Faults {
        fault_rate: 1.0,
        seed: 11,
        ..Faults::default()
    });
    for i in 0..12 {
        let outcome = client.add_user(&new_user(&format!("lost{i}"))).await;
        assert!(
            outcome.as_ref().is_err_and(Maas360Error::is_retryable),
            "{outcome:?}"
        );
    }
    let applied = handle.state().users.len();
    assert!(applied > 0 && applied < 12, "applied {applied} of 12");
    handle.set_faults(Faults::default());
    let mut adopted = 0;
    for i in 0..12 {
        let name = format!("lost{i}");
        match client.add_user(&new_user(&name)).await {
            Ok(_) => {}
            Err(Maas360Error::AlreadyExists { .. }) => {
                let found = client.find_user(&name, "contoso.com").await;
                assert!(matches!(found, Ok(Some(_))));
                adopted += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(adopted, applied);
    assert_eq!(handle.state().users.len(), 12);
    handle.stop().await;
}

#[tokio::test]
async fn each_request_is_bounded_by_the_timeout() {
    let cfg = EmulatorConfig::for_tests();
    let handle = emulator(cfg.clone(), None).await;
    handle.set_faults(Faults {
        latency_ms: 5_000,
        ..Faults::default()
    });
    let opts = ClientOptions {
        request_timeout: Duration::from_millis(200),
        ..options(AuthVersion::V1)
    };
    let client = client_for(&handle, &cfg, opts);
    let slow = client.authenticate().await;
    assert!(
        slow.as_ref().is_err_and(Maas360Error::is_retryable),
        "{slow:?}"
    );
    let counts = client.call_counts();
    assert_eq!(
        counts.get(&("auth_v1".to_owned(), "timeout".to_owned())),
        Some(&1),
        "{counts:?}"
    );
    drop(handle);
}

#[tokio::test]
async fn an_unreachable_server_is_retryable() {
    let handle = emulator(EmulatorConfig::for_tests(), None).await;
    let cfg = EmulatorConfig::for_tests();
    let base = handle.base_url();
    handle.stop().await;
    let client = match Maas360Client::new(credentials(&base, &cfg), options(AuthVersion::V1)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let down = client.authenticate().await;
    assert!(
        down.as_ref().is_err_and(Maas360Error::is_retryable),
        "{down:?}"
    );
}

#[test]
fn bad_configuration_is_refused_up_front() {
    let cfg = EmulatorConfig::for_tests();
    let bad_url = Maas360Client::new(credentials("not a url", &cfg), ClientOptions::default());
    assert!(matches!(bad_url, Err(Maas360Error::Config(_))));
    let ftp = Maas360Client::new(
        credentials("ftp://example.com", &cfg),
        ClientOptions::default(),
    );
    assert!(matches!(ftp, Err(Maas360Error::Config(_))));
    let opts = ClientOptions {
        renew_before: Duration::from_secs(3600),
        ..ClientOptions::default()
    };
    let renew = Maas360Client::new(credentials("https://services.m3.maas360.com", &cfg), opts);
    assert!(matches!(renew, Err(Maas360Error::Config(_))));
    let mut empty = credentials("https://services.m3.maas360.com", &cfg);
    empty.billing_id = " ".to_owned();
    assert!(matches!(
        Maas360Client::new(empty, ClientOptions::default()),
        Err(Maas360Error::Config(_))
    ));
}
