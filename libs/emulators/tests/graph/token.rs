//! The token endpoint: accepted forms and Entra's refusals (docs/graph.md §1).

use dirsync_emulators::graph::{GraphEmulatorConfig, GraphSeed};
use reqwest::StatusCode;

use crate::support::{http, send, start, token_form};

async fn post(
    handle: &dirsync_emulators::graph::GraphEmulatorHandle,
    tenant: &str,
    form: &[(&str, String)],
) -> crate::support::Answer {
    let url = format!("{}/{tenant}/oauth2/v2.0/token", handle.base_url());
    send(http().post(url).form(form)).await
}

/// A refused request: tenant in the path, form, then the expected status, error and code.
type Case = (String, Vec<(&'static str, String)>, u16, &'static str, u64);

fn with(form: &[(&'static str, String)], name: &str, value: &str) -> Vec<(&'static str, String)> {
    form.iter()
        .map(|(k, v)| {
            (
                *k,
                if *k == name {
                    value.to_owned()
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

#[tokio::test]
async fn issues_bearer_tokens_with_their_lifetime() {
    let handle = start(GraphEmulatorConfig::for_tests(), GraphSeed::default()).await;
    let config = handle.config();
    let form = token_form(config, &handle.base_url());
    let answer = post(&handle, &config.tenant_id, &form).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], 3599);
    assert_eq!(answer.body["ext_expires_in"], 3599);
    assert!(
        answer.body["access_token"]
            .as_str()
            .is_some_and(|t| t.len() > 20)
    );
    // The tenant's domain works as well as its id, and so does the real Graph scope.
    let form = with(&form, "scope", "https://graph.microsoft.com/.default");
    let answer = post(&handle, &config.tenant_domain, &form).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test]
async fn accepts_the_secret_in_basic_auth() {
    let handle = start(GraphEmulatorConfig::for_tests(), GraphSeed::default()).await;
    let config = handle.config();
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        handle.base_url(),
        config.tenant_id
    );
    let form = [
        ("scope", format!("{}/.default", handle.base_url())),
        ("grant_type", "client_credentials".to_owned()),
    ];
    let answer = send(
        http()
            .post(url)
            .basic_auth(&config.client_id, Some(&config.client_secret))
            .form(&form),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test]
async fn each_refusal_has_entras_shape_and_code() {
    let handle = start(GraphEmulatorConfig::for_tests(), GraphSeed::default()).await;
    let config = handle.config().clone();
    let form = token_form(&config, &handle.base_url());
    let cases: Vec<Case> = vec![
        (
            "someone-else.onmicrosoft.com".to_owned(),
            form.clone(),
            400,
            "invalid_request",
            90002,
        ),
        (
            config.tenant_id.clone(),
            with(&form, "client_id", "not-our-app"),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            config.tenant_id.clone(),
            with(&form, "client_secret", "wrong"),
            401,
            "invalid_client",
            7000215,
        ),
        (
            config.tenant_id.clone(),
            with(&form, "scope", "User.Read"),
            400,
            "invalid_scope",
            1002012,
        ),
        (
            config.tenant_id.clone(),
            with(&form, "scope", "https://foo.microsoft.com/.default"),
            400,
            "invalid_scope",
            70011,
        ),
        (
            config.tenant_id.clone(),
            with(&form, "grant_type", "password"),
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            config.tenant_id.clone(),
            with(&form, "client_secret", ""),
            401,
            "invalid_client",
            7000218,
        ),
        (
            config.tenant_id.clone(),
            [
                with(&form, "client_secret", ""),
                vec![
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                    ),
                    ("client_assertion", "not.a.jwt".to_owned()),
                ],
            ]
            .concat(),
            401,
            "invalid_client",
            50027,
        ),
    ];
    for (tenant, form, status, error, code) in cases {
        let answer = post(&handle, &tenant, &form).await;
        assert_eq!(answer.status.as_u16(), status, "{code}: {}", answer.body);
        assert_eq!(answer.body["error"], error, "{code}");
        assert_eq!(answer.body["error_codes"][0], code, "{code}");
        let description = answer.body["error_description"]
            .as_str()
            .unwrap_or_default();
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{description}"
        );
        assert!(description.contains("\r\nTrace ID: "), "{description}");
        for field in ["timestamp", "trace_id", "correlation_id"] {
            assert!(answer.body[field].is_string(), "{field} in {}", answer.body);
        }
        // The refused secret never comes back.
        assert!(!answer.body.to_string().contains("wrong"));
    }
    let counts = handle.request_counts();
    assert_eq!(
        counts.get("token").map(|c| c.values().sum::<u64>()),
        Some(8)
    );
}
