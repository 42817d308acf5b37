//! The MaaS360 emulator over raw HTTP: what any client, not just ours, sees on the wire.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use dirsync_emulators::maas360::{
    self as emu, EmulatorConfig, EmulatorHandle, Faults, Seed, SeedUser, StateDump,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// One HTTP/1.1 exchange on a fresh connection, bounded by a timeout.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = match tokio::time::timeout(Duration::from_secs(10), exchange).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => panic!("{method} {path}: {e}"),
        Err(_) => panic!("{method} {path}: timed out"),
    };
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

const JSON: (&str, &str) = ("Accept", "application/json");
const JSON_BODY: (&str, &str) = ("Content-Type", "application/json");
const FORM_BODY: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn auth_body(cfg: &EmulatorConfig, password: &str) -> String {
    serde_json::json!({"authRequest": {"maaS360AdminAuth": {
        "billingID": cfg.billing_id, "platformID": cfg.platform_id, "appID": cfg.app_id,
        "appVersion": cfg.app_version, "appAccessKey": cfg.app_access_key,
        "userName": cfg.admin_user, "password": password}}})
    .to_string()
}

async fn start(config: EmulatorConfig, seed: Option<Seed>) -> EmulatorHandle {
    match emu::start(config, seed).await {
        Ok(h) => h,
        Err(e) => panic!("start: {e}"),
    }
}

async fn token(handle: &EmulatorHandle, cfg: &EmulatorConfig) -> String {
    let path = format!("/auth-apis/auth/1.0/authenticate/{}", cfg.billing_id);
    let answer = http(
        handle.addr(),
        "POST",
        &path,
        &[JSON, JSON_BODY],
        &auth_body(cfg, &cfg.password),
    )
    .await;
    let token = answer.json()["authResponse"]["authToken"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(!token.is_empty(), "{}", answer.body);
    format!("MaaS token=\"{token}\"")
}

fn one_user_seed() -> Seed {
    Seed {
        users: vec![SeedUser {
            user_name: "jdoe".to_owned(),
            domain: "contoso.com".to_owned(),
            email: "jdoe@contoso.com".to_owned(),
            full_name: "Jane <Doe> & co".to_owned(),
            ..SeedUser::default()
        }],
        groups: Vec::new(),
    }
}

#[tokio::test]
async fn answers_xml_without_an_accept_header() {
    let cfg = EmulatorConfig::for_tests();
    let handle = start(cfg.clone(), Some(one_user_seed())).await;
    // The XML auth body of the IBM plugin, with the trailing slash it sends.
    let xml = format!(
        "<authRequest><maaS360AdminAuth><platformID>{}</platformID><billingID>{}</billingID>\
         <password>{}</password><userName>{}</userName><appID>{}</appID><appVersion>{}</appVersion>\
         <appAccessKey>{}</appAccessKey></maaS360AdminAuth></authRequest>",
        cfg.platform_id,
        cfg.billing_id,
        cfg.password,
        cfg.admin_user,
        cfg.app_id,
        cfg.app_version,
        cfg.app_access_key
    );
    let path = format!("/auth-apis/auth/1.0/authenticate/{}/", cfg.billing_id);
    let answer = http(
        handle.addr(),
        "POST",
        &path,
        &[("Content-Type", "application/xml")],
        &xml,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.headers.get("content-type").map(String::as_str),
        Some("application/xml")
    );
    assert!(answer.body.starts_with("<?xml"), "{}", answer.body);
    let token = answer
        .body
        .split("<authToken>")
        .nth(1)
        .and_then(|rest| rest.split("</authToken>").next())
        .unwrap_or("")
        .to_owned();
    assert!(!token.is_empty(), "{}", answer.body);
    assert!(answer.body.contains("<errorCode>0</errorCode>"));

    let auth = format!("MaaS token=\"{token}\"");
    let path = format!(
        "/user-apis/user/1.0/search/{}?includeAllUsers=1",
        cfg.billing_id
    );
    let answer = http(handle.addr(), "GET", &path, &[("Authorization", &auth)], "").await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.contains("<users><count>1</count>"),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("<userName>jdoe</userName>"));
    assert!(
        answer
            .body
            .contains("<fullName>Jane &lt;Doe&gt; &amp; co</fullName>")
    );
    handle.stop().await;
}

#[tokio::test]
async fn json_follows_the_xml_habits_unless_switched_off() {
    for quirks in [true, false] {
        let cfg = EmulatorConfig {
            one_element_as_object: quirks,
            ..EmulatorConfig::for_tests()
        };
        let handle = start(cfg.clone(), Some(one_user_seed())).await;
        let auth = token(&handle, &cfg).await;
        let path = format!(
            "/user-apis/user/1.0/search/{}?includeAllUsers=1&pageSize=25",
            cfg.billing_id
        );
        let answer = http(
            handle.addr(),
            "GET",
            &path,
            &[JSON, ("Authorization", &auth)],
            "",
        )
        .await;
        assert_eq!(answer.status, 200);
        let users = &answer.json()["users"];
        if quirks {
            assert_eq!(users["count"], Value::from("1"));
            assert!(users["user"].is_object(), "{}", answer.body);
            assert_eq!(users["user"]["authType"], Value::from("0"));
            assert!(
                users["user"]
                    .get("groups")
                    .is_some_and(|g| g.get("group").is_none())
            );
        } else {
            assert_eq!(users["count"], Value::from(1));
            assert!(users["user"].is_array(), "{}", answer.body);
            assert_eq!(
                users["user"][0]["groups"]["group"],
                Value::Array(Vec::new())
            );
        }
        handle.stop().await;
    }
}

fn refresh_body(cfg: &EmulatorConfig, refresh: &str) -> String {
    serde_json::json!({"authRequest": {"maaS360AdminAuth": {
        "billingID": cfg.billing_id, "userName": cfg.admin_user, "appID": cfg.app_id,
        "appVersion": cfg.app_version, "platformID": cfg.platform_id, "refreshToken": refresh}}})
    .to_string()
}

#[tokio::test]
async fn refused_credentials_answer_200_with_an_error_code() {
    let cfg = EmulatorConfig::for_tests();
    let handle = start(cfg.clone(), None).await;
    let path = format!(
        "/auth-apis/auth/2.0/authenticate/customer/{}",
        cfg.billing_id
    );
    let answer = http(
        handle.addr(),
        "POST",
        &path,
        &[JSON, JSON_BODY],
        &auth_body(&cfg, "wrong"),
    )
    .await;
    assert_eq!(answer.status, 200);
    let response = &answer.json()["authResponse"];
    assert_eq!(
        response["errorCode"],
        Value::from("1002"),
        "{}",
        answer.body
    );
    assert_eq!(response["errorDesc"], Value::from("Invalid credentials"));
    assert!(response.get("authToken").is_none());

    let other = "/auth-apis/auth/2.0/authenticate/customer/11111111";
    let answer = http(
        handle.addr(),
        "POST",
        other,
        &[JSON, JSON_BODY],
        &auth_body(&cfg, &cfg.password),
    )
    .await;
    assert!(
        answer.json()["authResponse"]["errorDesc"]
            .as_str()
            .is_some_and(|d| d.contains("billing"))
    );
    handle.stop().await;
}

#[tokio::test]
async fn refresh_tokens_are_redeemed_once_through_their_own_route() {
    let cfg = EmulatorConfig::for_tests();
    let handle = start(cfg.clone(), None).await;
    let authenticate = format!(
        "/auth-apis/auth/2.0/authenticate/customer/{}",
        cfg.billing_id
    );
    let refresh_path = format!(
        "/auth-apis/auth/2.0/refreshToken/customer/{}",
        cfg.billing_id
    );
    let answer = http(
        handle.addr(),
        "POST",
        &authenticate,
        &[JSON, JSON_BODY],
        &auth_body(&cfg, &cfg.password),
    )
    .await;
    let refresh = answer.json()["authResponse"]["refreshToken"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(!refresh.is_empty(), "{}", answer.body);

    // The authenticate route does not take a refresh token in place of the password.
    let instead_of_password = auth_body(&cfg, "").replace(
        "\"password\":\"\"",
        &format!("\"refreshToken\":\"{refresh}\""),
    );
    let refused = http(
        handle.addr(),
        "POST",
        &authenticate,
        &[JSON, JSON_BODY],
        &instead_of_password,
    )
    .await;
    assert_eq!(
        refused.json()["authResponse"]["errorCode"],
        Value::from("1002"),
        "{}",
        refused.body
    );

    let first = http(
        handle.addr(),
        "POST",
        &refresh_path,
        &[JSON, JSON_BODY],
        &refresh_body(&cfg, &refresh),
    )
    .await;
    let response = &first.json()["authResponse"];
    assert_eq!(response["errorCode"], Value::from("0"), "{}", first.body);
    assert!(
        response["authToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(
        response["refreshToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty() && t != refresh)
    );
    assert!(handle.violations().is_empty());
    let second = http(
        handle.addr(),
        "POST",
        &refresh_path,
        &[JSON, JSON_BODY],
        &refresh_body(&cfg, &refresh),
    )
    .await;
    assert!(
        second.json()["authResponse"]["errorDesc"]
            .as_str()
            .is_some_and(|d| d.contains("refresh")),
        "{}",
        second.body
    );

    // Sending the password or access key along is recorded: refresh must not need them.
    let with_secrets = auth_body(&cfg, &cfg.password).replace(
        "\"password\"",
        &format!("\"refreshToken\":\"{refresh}\",\"password\""),
    );
    let _ = http(
        handle.addr(),
        "POST",
        &refresh_path,
        &[JSON, JSON_BODY],
        &with_secrets,
    )
    .await;
    let violations = handle.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].kind, "secret_on_refresh");
    assert!(
        violations[0].detail.contains("password") && violations[0].detail.contains("appAccessKey")
    );
    assert!(handle.retry_after_violations().is_empty());
    handle.stop().await;
}

#[tokio::test]
async fn tokens_must_be_well_formed_current_and_for_this_account() {
    let cfg = EmulatorConfig::for_tests();
    let handle = start(cfg.clone(), None).await;
    let auth = token(&handle, &cfg).await;
    let path = format!("/group-apis/group/1.0/groups/customer/{}", cfg.billing_id);
    let ok = http(
        handle.addr(),
        "GET",
        &path,
        &[JSON, ("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(ok.status, 200);

    // IBM's own integration sends single quotes (docs/maas360.md §2.4).
    let single = auth.replace('"', "'");
    let ok = http(
        handle.addr(),
        "GET",
        &path,
        &[JSON, ("Authorization", &single)],
        "",
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        handle.authorization_styles(),
        [("double".to_owned(), 1), ("single".to_owned(), 1)].into()
    );

    let bare = auth.replace('"', "");
    let mixed = auth.replacen('"', "'", 1);
    for bad in [
        "",
        "Bearer abc",
        "MaaS token=\"not-issued\"",
        bare.as_str(),
        mixed.as_str(),
    ] {
        let headers: Vec<(&str, &str)> = if bad.is_empty() {
            vec![JSON]
        } else {
            vec![JSON, ("Authorization", bad)]
        };
        let answer = http(handle.addr(), "GET", &path, &headers, "").await;
        assert_eq!(answer.status, 401, "{bad:?}");
        // Keyed by the resource: {"groups":{"errorCode":1009,"errorDesc":"Token invalid"}}.
        let refusal = &answer.json()["groups"];
        assert_eq!(refusal["errorCode"], Value::from("1009"), "{}", answer.body);
        assert_eq!(refusal["errorDesc"], Value::from("Token invalid"));
    }

    let other = "/group-apis/group/1.0/groups/customer/11111111";
    let mismatch = http(
        handle.addr(),
        "GET",
        other,
        &[JSON, ("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(mismatch.status, 403);

    handle.expire_tokens();
    let expired = http(handle.addr(), "GET", &path, &[("Authorization", &auth)], "").await;
    assert_eq!(expired.status, 401);
    assert!(
        expired.body.contains(
            "<groups><errorCode>1009</errorCode><errorDesc>Token expired.</errorDesc></groups>"
        ),
        "{}",
        expired.body
    );
    handle.stop().await;
}

#[tokio::test]
async fn only_allowed_page_sizes_are_accepted() {
    let cfg = EmulatorConfig::for_tests();
    let handle = start(cfg.clone(), None).await;
    let auth = token(&handle, &cfg).await;
    for (query, status) in [
        ("pageSize=25", 200),
        ("pageSize=250&pageNumber=3", 200),
        ("pageSize=30", 400),
        ("pageSize=500", 400),
        ("pageSize=abc", 400),
        ("pageNumber=0", 400),
    ] {
        let path = format!("/user-apis/user/1.0/search/{}?{query}", cfg.billing_id);
        let answer = http(
            handle.addr(),
            "GET",
            &path,
            &[JSON, ("Authorization", &auth)],
            "",
        )
        .await;
        assert_eq!(answer.status, status, "{query}: {}", answer.body);
    }
    let counts = handle.request_counts();
    assert_eq!(
        counts.get("search_users").and_then(|c| c.get(&400)),
        Some(&4)
    );
    handle.stop().await;
}

#[tokio::test]
async fn add_user_takes_form_json_or_xml_and_refuses_duplicates() {
    let cfg = EmulatorConfig::for_tests();
    let handle = start(cfg.clone(), None).await;
    let auth = token(&handle, &cfg).await;
    let path = format!("/user-apis/user/1.0/addUser/customer/{}", cfg.billing_id);
    let form = "userName=a.b&domain=contoso.com&email=a.b%40contoso.com&fullName=A+B";
    let answer = http(
        handle.addr(),
        "POST",
        &path,
        &[JSON, FORM_BODY, ("Authorization", &auth)],
        form,
    )
    .await;
    // The older write routes' answer: actionStatus 0 with a description.
    let action = &answer.json()["actionResponse"];
    assert_eq!(action["actionStatus"], Value::from("0"), "{}", answer.body);
    assert!(action["description"].is_string());
    assert!(
        action["userIdentifier"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );

    let dup = form.replace("a.b&", "A.B&");
    let answer = http(
        handle.addr(),
        "POST",
        &path,
        &[JSON, FORM_BODY, ("Authorization", &auth)],
        &dup,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json()["actionResponse"]["actionStatus"],
        Value::from("1")
    );
    assert!(answer.body.contains("already exists"));
    let bad_type = http(
        handle.addr(),
        "POST",
        &path,
        &[JSON, FORM_BODY, ("Authorization", &auth)],
        "userName=t&domain=contoso.com&email=t%40contoso.com&authType=7",
    )
    .await;
    assert_eq!(
        bad_type.json()["actionResponse"]["actionStatus"],
        Value::from("1"),
        "{}",
        bad_type.body
    );

    let xml = "<user><userName>c</userName><domain>contoso.com</domain>\
               <emailAddress>c@contoso.com</emailAddress><firstName>C</firstName><lastName>D</lastName></user>";
    let answer = http(
        handle.addr(),
        "POST",
        &path,
        &[
            ("Content-Type", "application/xml"),
            ("Authorization", &auth),
        ],
        xml,
    )
    .await;
    assert!(
        answer.body.contains("<actionStatus>0</actionStatus>"),
        "{}",
        answer.body
    );
    let json = r#"{"userName":"e","domain":"contoso.com","email":"e@contoso.com"}"#;
    let answer = http(
        handle.addr(),
        "POST",
        &path,
        &[JSON, JSON_BODY, ("Authorization", &auth)],
        json,
    )
    .await;
    assert_eq!(
        answer.json()["actionResponse"]["actionStatus"],
        Value::from("0")
    );

    let broken = http(
        handle.addr(),
        "POST",
        &path,
        &[JSON, JSON_BODY, ("Authorization", &auth)],
        "{not json",
    )
    .await;
    assert_eq!(broken.status, 400);

    let state = handle.state();
    assert_eq!(state.users.len(), 3);
    assert_eq!(
        state.user("c", "contoso.com").map(|u| u.full_name.as_str()),
        Some("C D")
    );
    handle.stop().await;
}

#[tokio::test]
async fn clients_that_ignore_retry_after_are_recorded() {
    let cfg = EmulatorConfig::for_tests();
    let handle = start(cfg.clone(), None).await;
    let auth = token(&handle, &cfg).await;
    handle.set_faults(Faults {
        rate_limit_per_minute: 1,
        ..Faults::default()
    });
    let path = format!("/group-apis/group/1.0/groups/customer/{}", cfg.billing_id);
    let first = http(
        handle.addr(),
        "GET",
        &path,
        &[JSON, ("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(first.status, 200);
    let throttled = http(
        handle.addr(),
        "GET",
        &path,
        &[JSON, ("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(throttled.status, 429);
    let secs: u64 = throttled
        .headers
        .get("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(secs >= 1, "{:?}", throttled.headers);
    assert!(throttled.json().get("errorCode").is_some());
    assert!(handle.retry_after_violations().is_empty());

    // Straight back is excused (it could have been in flight); a little later is not.
    let in_flight = http(
        handle.addr(),
        "GET",
        &path,
        &[JSON, ("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(in_flight.status, 429);
    assert!(handle.retry_after_violations().is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let rude = http(
        handle.addr(),
        "GET",
        &path,
        &[JSON, ("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(rude.status, 429);
    let violations = handle.retry_after_violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].route, "list_groups");
    assert_eq!(violations[0].retry_after_secs, secs);
    assert!(violations[0].early_by_ms > 250);
    handle.stop().await;
}

#[tokio::test]
async fn admin_api_inspects_and_steers_the_emulator() {
    let cfg = EmulatorConfig::for_tests();
    let handle = start(cfg.clone(), Some(one_user_seed())).await;
    let addr = handle.addr();
    let state = http(addr, "GET", "/_emulator/state", &[], "").await;
    let dump: StateDump = match serde_json::from_str(&state.body) {
        Ok(d) => d,
        Err(e) => panic!("{e}: {}", state.body),
    };
    assert_eq!(dump, handle.state());
    assert_eq!(dump.users.len(), 1);

    let faults = r#"{"fault_rate":0.25,"latency_ms":1,"rate_limit_per_minute":100,"outage":{"starts_after_ms":1000,"lasts_ms":2000},"seed":9}"#;
    let put = http(addr, "PUT", "/_emulator/faults", &[JSON_BODY], faults).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let got = http(addr, "GET", "/_emulator/faults", &[], "").await;
    let got: Faults = serde_json::from_str(&got.body).unwrap_or_default();
    assert_eq!(got.rate_limit_per_minute, 100);
    assert_eq!(got.outage.map(|o| o.lasts), Some(Duration::from_secs(2)));
    let bad = http(
        addr,
        "PUT",
        "/_emulator/faults",
        &[JSON_BODY],
        "{\"fault_rate\":\"x\"}",
    )
    .await;
    assert!((400..500).contains(&bad.status));
    let reset_faults = http(addr, "PUT", "/_emulator/faults", &[JSON_BODY], "{}").await;
    assert_eq!(reset_faults.status, 200);

    let auth = token(&handle, &cfg).await;
    let path = format!("/group-apis/group/1.0/groups/customer/{}", cfg.billing_id);
    assert_eq!(
        http(addr, "GET", &path, &[("Authorization", &auth)], "")
            .await
            .status,
        200
    );
    assert_eq!(
        http(addr, "POST", "/_emulator/expire-tokens", &[], "")
            .await
            .status,
        204
    );
    assert_eq!(
        http(addr, "GET", &path, &[("Authorization", &auth)], "")
            .await
            .status,
        401
    );

    let requests = http(addr, "GET", "/_emulator/requests", &[], "")
        .await
        .json();
    assert_eq!(requests["list_groups"]["200"], Value::from(1), "{requests}");
    assert_eq!(requests["list_groups"]["401"], Value::from(1));
    assert_eq!(requests["auth_v1"]["200"], Value::from(1));
    let violations = http(addr, "GET", "/_emulator/violations", &[], "").await;
    assert_eq!(violations.json(), Value::Array(Vec::new()));

    let unknown = http(addr, "GET", "/user-apis/user/9.9/nothing", &[], "").await;
    assert_eq!(unknown.status, 404);

    let auth = token(&handle, &cfg).await;
    let add = format!("/user-apis/user/1.0/addUser/customer/{}", cfg.billing_id);
    let body = "userName=x&domain=d.com&email=x%40d.com";
    assert_eq!(
        http(
            addr,
            "POST",
            &add,
            &[FORM_BODY, ("Authorization", &auth)],
            body
        )
        .await
        .status,
        200
    );
    assert_eq!(handle.state().users.len(), 2);
    assert_eq!(
        http(addr, "POST", "/_emulator/reset", &[], "").await.status,
        204
    );
    assert_eq!(handle.state().users.len(), 1);
    assert!(handle.request_counts().is_empty());
    // Tokens do not survive a reset.
    assert_eq!(
        http(addr, "GET", &path, &[("Authorization", &auth)], "")
            .await
            .status,
        401
    );
    handle.stop().await;
}

#[tokio::test]
async fn serve_runs_on_a_given_listener_until_shutdown() {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let addr = listener.local_addr().ok();
    let Some(addr) = addr else { panic!("no addr") };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(emu::serve(
        listener,
        EmulatorConfig::for_tests(),
        None,
        async move {
            let _ = rx.await;
        },
    ));
    let answer = http(addr, "GET", "/_emulator/faults", &[], "").await;
    assert_eq!(answer.status, 200);
    let _ = tx.send(());
    let joined = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(matches!(joined, Ok(Ok(Ok(())))));
}

#[tokio::test]
async fn a_seed_naming_an_unknown_member_is_refused() {
    let seed = Seed::from_json(r#"{"users":[],"groups":[{"name":"G","members":["ghost"]}]}"#);
    let Ok(seed) = seed else { panic!("{seed:?}") };
    let started = emu::start(EmulatorConfig::for_tests(), Some(seed)).await;
    assert!(matches!(started, Err(ref e) if e.kind() == std::io::ErrorKind::InvalidData));
    assert!(Seed::from_json("{\"users\": 3}").is_err());
    let seed = Seed::from_json(
        r#"{"users":[{"userName":"a","domain":"d.com","email":"a@d.com","status":"Inactive"}],
            "groups":[{"name":"G","apps":[{"id":"app1","name":"App"}],"members":["a@d.com"]}]}"#,
    );
    let Ok(seed) = seed else { panic!("{seed:?}") };
    let handle = start(EmulatorConfig::for_tests(), Some(seed)).await;
    let state = handle.state();
    assert_eq!(state.users[0].status, "Inactive");
    let gid = state
        .group("G")
        .map(|g| g.group_identifier.clone())
        .unwrap_or_default();
    assert_eq!(
        state.members(&gid),
        vec![state.users[0].user_identifier.clone()]
    );
    handle.stop().await;
}

#[tokio::test]
async fn a_route_can_be_moved_at_start_and_at_run_time() {
    let moved = "/group-apis/group/9.9/allGroups/customer/{billingID}";
    let cfg = EmulatorConfig {
        routes: [("list_groups".to_owned(), moved.to_owned())].into(),
        ..EmulatorConfig::for_tests()
    };
    let handle = start(cfg.clone(), None).await;
    let addr = handle.addr();
    let auth = token(&handle, &cfg).await;
    let old = format!("/group-apis/group/1.0/groups/customer/{}", cfg.billing_id);
    let new = moved.replace("{billingID}", &cfg.billing_id);
    let headers = [JSON, ("Authorization", auth.as_str())];
    assert_eq!(http(addr, "GET", &old, &headers, "").await.status, 404);
    assert_eq!(http(addr, "GET", &new, &headers, "").await.status, 200);

    // Moved back at run time through the admin API.
    let body = r#"{"path": "/group-apis/group/1.0/groups/customer/{billingID}"}"#;
    let put = http(
        addr,
        "PUT",
        "/_emulator/routes/list_groups",
        &[JSON_BODY],
        body,
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(http(addr, "GET", &old, &headers, "").await.status, 200);
    assert_eq!(http(addr, "GET", &new, &headers, "").await.status, 404);
    let listed = http(addr, "GET", "/_emulator/routes", &[], "").await.json();
    assert!(
        listed.as_array().is_some_and(|routes| routes.len() == 17
            && routes.iter().any(|r| r["name"] == "list_groups"
                && r["path"] == "/group-apis/group/1.0/groups/customer/{billingID}"
                && r["method"] == "GET")),
        "{listed}"
    );

    // A path the handler could not serve is refused, naming the problem.
    let bad = http(
        addr,
        "PUT",
        "/_emulator/routes/edit_user",
        &[JSON_BODY],
        r#"{"path": "/x/{billingID}"}"#,
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("userIdentifier"), "{}", bad.body);
    let unknown = http(
        addr,
        "PUT",
        "/_emulator/routes/editUser",
        &[JSON_BODY],
        r#"{"path": "/x/{billingID}"}"#,
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert!(matches!(
        handle.move_route("list_groups", "groups"),
        Err(emu::RouteError::BadPath { .. })
    ));
    handle.stop().await;

    let wrong = EmulatorConfig {
        routes: [("no_such_route".to_owned(), "/x/{billingID}".to_owned())].into(),
        ..EmulatorConfig::for_tests()
    };
    let refused = emu::start(wrong, None).await;
    assert!(matches!(refused, Err(ref e) if e.kind() == std::io::ErrorKind::InvalidInput));
}

#[tokio::test]
async fn the_group_list_has_group_ids_and_numeric_types() {
    let seed = Seed::from_json(
        r#"{"users":[{"userName":"a","domain":"d.com","email":"a@d.com"}],
            "groups":[{"groupIdentifier":"7","name":"Sales","members":["a"]},
                      {"name":"Kiosks","groupType":1}]}"#,
    );
    let Ok(seed) = seed else { panic!("{seed:?}") };
    let cfg = EmulatorConfig {
        one_element_as_object: false,
        ..EmulatorConfig::for_tests()
    };
    let handle = start(cfg.clone(), Some(seed)).await;
    let auth = token(&handle, &cfg).await;
    let path = format!("/group-apis/group/1.0/groups/customer/{}", cfg.billing_id);
    let answer = http(
        handle.addr(),
        "GET",
        &path,
        &[JSON, ("Authorization", &auth)],
        "",
    )
    .await;
    let groups = &answer.json()["groups"];
    assert_eq!(groups["count"], Value::from(2), "{}", answer.body);
    let sales = &groups["group"][1];
    assert_eq!(sales["groupName"], Value::from("Sales"));
    assert_eq!(sales["groupID"], Value::from("7"));
    assert_eq!(sales["groupType"], Value::from(3));
    assert!(sales.get("groupIdentifier").is_none());
    assert_eq!(groups["group"][0]["groupType"], Value::from(1));
    let members = format!(
        "/user-apis/user/1.0/searchByGroup/customer/{}/groupIdentifier/7?includeAllUsers=1",
        cfg.billing_id
    );
    let answer = http(
        handle.addr(),
        "GET",
        &members,
        &[JSON, ("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(
        answer.json()["users"]["count"],
        Value::from(1),
        "{}",
        answer.body
    );
    let bad = Seed::from_json(r#"{"groups":[{"name":"G","groupType":7}]}"#);
    let Ok(bad) = bad else { panic!("{bad:?}") };
    assert!(
        emu::start(EmulatorConfig::for_tests(), Some(bad))
            .await
            .is_err()
    );
    handle.stop().await;
}

#[tokio::test]
async fn every_answer_carries_the_rate_limit_headers_while_a_limit_is_set() {
    let cfg = EmulatorConfig::for_tests();
    let handle = start(cfg.clone(), None).await;
    let addr = handle.addr();
    let auth = token(&handle, &cfg).await;
    let path = format!("/group-apis/group/1.0/groups/customer/{}", cfg.billing_id);
    let headers = [JSON, ("Authorization", auth.as_str())];
    let plain = http(addr, "GET", &path, &headers, "").await;
    assert!(
        !plain.headers.contains_key("x-rate-limit-remaining"),
        "no limit, nothing to tell"
    );

    handle.set_faults(Faults {
        rate_limit_per_minute: 2,
        ..Faults::default()
    });
    let put = http(
        addr,
        "PUT",
        "/_emulator/rate-limit",
        &[JSON_BODY],
        r#"{"retry_after": "http_date"}"#,
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let got = http(addr, "GET", "/_emulator/rate-limit", &[], "")
        .await
        .json();
    assert_eq!(got["retry_after"], Value::from("http_date"));
    assert_eq!(got["reject"], Value::from(true));

    let remaining = |a: &Answer| {
        a.headers
            .get("x-rate-limit-remaining")
            .cloned()
            .unwrap_or_default()
    };
    let window = |a: &Answer| {
        a.headers
            .get("x-rate-limit-resetwindow")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let first = http(addr, "GET", &path, &headers, "").await;
    assert_eq!((first.status, remaining(&first).as_str()), (200, "1"));
    assert!((1..=60).contains(&window(&first)));
    let second = http(addr, "GET", &path, &headers, "").await;
    assert_eq!((second.status, remaining(&second).as_str()), (200, "0"));
    let refused = http(addr, "GET", &path, &headers, "").await;
    assert_eq!((refused.status, remaining(&refused).as_str()), (429, "0"));
    let date = refused
        .headers
        .get("retry-after")
        .cloned()
        .unwrap_or_default();
    assert!(date.ends_with(" GMT"), "an HTTP date: {date:?}");
    let waits = dirsync_http::retry_after(&date);
    assert!(
        waits.is_some_and(|w| w <= Duration::from_secs(61)),
        "{date}"
    );
    // Refusals, unknown paths and authentication answers carry them as well.
    let unauthorized = http(addr, "GET", &path, &[JSON], "").await;
    assert_eq!(remaining(&unauthorized), "0");
    let unknown = http(addr, "GET", "/user-apis/user/9.9/nothing", &[], "").await;
    assert_eq!((unknown.status, remaining(&unknown).as_str()), (404, "0"));
    let login = format!("/auth-apis/auth/1.0/authenticate/{}", cfg.billing_id);
    let auth_answer = http(
        addr,
        "POST",
        &login,
        &[JSON, JSON_BODY],
        &auth_body(&cfg, &cfg.password),
    )
    .await;
    assert_eq!(
        (auth_answer.status, remaining(&auth_answer).as_str()),
        (200, "0")
    );
    handle.stop().await;
}

#[tokio::test]
async fn deletions_wait_for_the_daily_job_and_active_devices_block_them() {
    let seed = Seed::from_json(
        r#"{"users":[
            {"userIdentifier":"U1","userName":"a","domain":"d.com","email":"a@d.com",
             "devices":[{"csn":"C1","platform":"iOS"}]},
            {"userIdentifier":"U2","userName":"b","domain":"d.com","email":"b@d.com"}],
            "groups":[{"name":"G","apps":[{"id":"app1","name":"App"}],"members":["a","b"]}]}"#,
    );
    let Ok(seed) = seed else { panic!("{seed:?}") };
    let cfg = EmulatorConfig::for_tests();
    let handle = start(cfg.clone(), Some(seed)).await;
    let addr = handle.addr();
    let auth = token(&handle, &cfg).await;
    let delete = |id: &str| {
        format!(
            "/user-apis/user/1.0/deleteUser/customer/{}/user/{id}",
            cfg.billing_id
        )
    };
    let headers = [JSON, FORM_BODY, ("Authorization", auth.as_str())];

    let refused = http(addr, "POST", &delete("U1"), &headers, "").await;
    let action = &refused.json()["actionResponse"];
    assert_eq!(action["actionStatus"], Value::from("1"), "{}", refused.body);
    assert_eq!(action["errorCode"], Value::from("1020"));
    assert!(
        action["description"]
            .as_str()
            .is_some_and(|d| d.contains("active device"))
    );

    let queued = http(addr, "POST", &delete("U2"), &headers, "").await;
    assert_eq!(
        queued.json()["actionResponse"]["actionStatus"],
        Value::from("0")
    );
    let state: StateDump =
        serde_json::from_str(&http(addr, "GET", "/_emulator/state", &[], "").await.body)
            .unwrap_or_default();
    let b = state.user("b", "d.com");
    assert_eq!(b.map(|u| u.status.as_str()), Some("Pending Deletion"));
    assert_eq!(b.map(|u| u.distributions.len()), Some(0));
    let a = state.user("a", "d.com");
    assert_eq!(a.map(|u| u.devices.len()), Some(1));
    assert_eq!(
        a.map(|u| u.distributions.clone()),
        Some(vec!["app:app1".to_owned()])
    );
    // A user pending deletion takes no more changes.
    let deactivate = format!(
        "/user-apis/user/1.0/deactivateUser/customer/{}/user/U2",
        cfg.billing_id
    );
    let refused = http(addr, "POST", &deactivate, &headers, "").await;
    assert_eq!(
        refused.json()["actionResponse"]["actionStatus"],
        Value::from("1")
    );

    // The device goes; the job runs.
    let put = http(
        addr,
        "PUT",
        "/_emulator/users/U1/devices",
        &[JSON_BODY],
        r#"[{"csn":"C1","platform":"iOS","active":false}]"#,
    )
    .await;
    assert_eq!(put.status, 204, "{}", put.body);
    let queued = http(addr, "POST", &delete("U1"), &headers, "").await;
    assert_eq!(
        queued.json()["actionResponse"]["actionStatus"],
        Value::from("0")
    );
    let job = http(addr, "POST", "/_emulator/run-deletion-job", &[], "")
        .await
        .json();
    assert_eq!(job["deleted"], Value::from(2));
    assert!(handle.state().users.is_empty());
    let missing = http(
        addr,
        "PUT",
        "/_emulator/users/U9/devices",
        &[JSON_BODY],
        "[]",
    )
    .await;
    assert_eq!(missing.status, 404);
    handle.stop().await;
}
