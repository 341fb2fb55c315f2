//! API tokens and the second factor, over real HTTPS: a token acts within its scopes
//! and its user's role, needs no CSRF token, cannot change access, is limited in rate,
//! expires and is revoked at once; a TOTP code is needed at sign-in, works once, and a
//! recovery code works once; a role can require a second factor.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use time::Duration;

use crate::common::{Api, TestServer, api_error, boot};

/// A client that sends only the token (no cookies, no CSRF header).
struct Bearer {
    client: Client,
    base: String,
    token: String,
}

impl Bearer {
    fn new(s: &TestServer, token: &str) -> Bearer {
        Bearer {
            client: s.client(),
            base: s.base.clone(),
            token: token.to_string(),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET")
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body);
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        req.send().await.expect("request")
    }

    async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("DELETE")
    }
}

async fn make_token(api: &Api, password: &str, body: Value) -> reqwest::Response {
    let mut body = body;
    body["current_password"] = Value::String(password.into());
    api.post("/api/v1/tokens", &body).await
}

async fn made(res: reqwest::Response) -> (String, String) {
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.expect("json");
    let secret = body["token"].as_str().expect("secret").to_string();
    assert!(
        secret.starts_with("nexus_tok_") && secret.len() == 74,
        "{secret}"
    );
    (secret, body["id"].as_str().expect("id").to_string())
}

fn security_events(s: &TestServer, since: u64) -> Vec<String> {
    s.running
        .kernel
        .events_since(since, 1000)
        .expect("events")
        .iter()
        .map(|e| e.entity.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_token_acts_within_its_scopes_and_stops_when_revoked() {
    let s = boot(0).await;
    let admin = s.admin().await;
    let password = s.add_user("sam", "Sales").await;
    let sam = s.api("sam", &password).await;
    let start = s.running.kernel.log_head();

    // Bad requests: no password, scopes beyond the role, limits.
    let res = sam
        .post(
            "/api/v1/tokens",
            &json!({ "name": "import", "scopes": "customer:r" }),
        )
        .await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(
        body["error"]["fields"]["current_password"].is_string(),
        "{body}"
    );
    let res = make_token(
        &sam,
        "not my password",
        json!({ "name": "import", "scopes": "customer:r" }),
    )
    .await;
    api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let res = make_token(&sam, &password, json!({ "name": "x", "scopes": "user:rw" })).await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let m = body["error"]["fields"]["scopes"]
        .as_str()
        .unwrap_or_default();
    assert!(m.contains("you do not hold user:w"), "{body}");
    for (field, body) in [
        ("name", json!({ "name": "", "scopes": "customer:r" })),
        (
            "name",
            json!({ "name": "n".repeat(81), "scopes": "customer:r" }),
        ),
        ("scopes", json!({ "name": "n", "scopes": "" })),
        ("scopes", json!({ "name": "n", "scopes": "invoicez:r" })),
        (
            "days",
            json!({ "name": "n", "scopes": "customer:r", "days": 0 }),
        ),
        (
            "days",
            json!({ "name": "n", "scopes": "customer:r", "days": 367 }),
        ),
        (
            "requests_per_minute",
            json!({ "name": "n", "scopes": "customer:r", "requests_per_minute": -1 }),
        ),
        (
            "bogus",
            json!({ "name": "n", "scopes": "customer:r", "bogus": 1 }),
        ),
    ] {
        let res = make_token(&sam, &password, body.clone()).await;
        let answer = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
        assert!(
            answer["error"]["fields"][field].is_string(),
            "{body} → {answer}"
        );
    }

    // A read-only token reads, and cannot write.
    let (read_secret, read_id) = made(
        make_token(
            &sam,
            &password,
            json!({ "name": "report", "scopes": "customer:r", "days": 30 }),
        )
        .await,
    )
    .await;
    let reader = Bearer::new(&s, &read_secret);
    assert_eq!(
        reader.get("/api/v1/customer").await.status(),
        StatusCode::OK
    );
    let res = reader
        .post(
            "/api/v1/customer",
            &json!({ "name": "Via Token", "status": "Active" }),
        )
        .await;
    api_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    // A writing token writes without a CSRF token (a browser never sends it by itself).
    let (write_secret, _) = made(
        make_token(
            &sam,
            &password,
            json!({ "name": "import", "scopes": "customer:rc" }),
        )
        .await,
    )
    .await;
    let writer = Bearer::new(&s, &write_secret);
    let res = writer
        .post(
            "/api/v1/customer",
            &json!({ "name": "Via Token", "status": "Active" }),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let me: Value = writer.get("/api/v1/me").await.json().await.expect("me");
    assert_eq!(me["username"], "sam");
    assert!(me["via_token"].is_string(), "{me}");

    // Nothing that changes access goes through a token.
    let res = writer
        .post(
            "/api/v1/tokens",
            &json!({ "name": "more", "scopes": "customer:r", "current_password": password }),
        )
        .await;
    api_error(res, StatusCode::FORBIDDEN, "token_not_allowed").await;
    api_error(
        writer.get("/api/v1/sessions").await,
        StatusCode::FORBIDDEN,
        "token_not_allowed",
    )
    .await;
    api_error(
        writer.delete("/api/v1/session").await,
        StatusCode::FORBIDDEN,
        "token_not_allowed",
    )
    .await;
    api_error(
        writer.delete(&format!("/api/v1/tokens/{read_id}")).await,
        StatusCode::FORBIDDEN,
        "token_not_allowed",
    )
    .await;
    // A wrong or malformed token is "sign in", whatever its shape.
    for bad in [
        "nexus_tok_",
        "nexus_tok_00",
        &format!("nexus_tok_{}", "0".repeat(64)),
        "Basic abc",
    ] {
        api_error(
            Bearer::new(&s, bad).get("/api/v1/me").await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }

    // Listing shows the tokens, never their secrets; others' are the admin's to see.
    let mine = sam.json("/api/v1/tokens").await;
    let list = mine["data"].as_array().expect("list");
    assert_eq!(list.len(), 2, "{mine}");
    assert!(list.iter().all(|t| t.get("token").is_none()), "{mine}");
    assert!(!mine.to_string().contains(&read_secret));
    api_error(
        sam.get("/api/v1/tokens?all=maybe").await,
        StatusCode::BAD_REQUEST,
        "malformed",
    )
    .await;
    let all = admin.json("/api/v1/tokens?all=true").await;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(2), "{all}");
    assert_eq!(all["data"][0]["username"], "sam");
    assert_eq!(
        admin.json("/api/v1/tokens").await["data"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    // Another user cannot revoke sam's token; the owner can, and it stops at once.
    let vic_password = s.add_user("vic", "Viewer").await;
    let vic = s.api("vic", &vic_password).await;
    api_error(
        vic.delete(&format!("/api/v1/tokens/{read_id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        sam.delete(&format!("/api/v1/tokens/{read_id}"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    api_error(
        reader.get("/api/v1/customer").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    api_error(
        sam.delete(&format!("/api/v1/tokens/{read_id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // The token follows its user's role: lowered, it loses what the role lost.
    let sales = crate::security::id_of(&admin, "role", "name", "Sales").await;
    let role: Value = admin.json(&format!("/api/v1/role/{sales}")).await;
    let res = admin
        .patch(
            &format!("/api/v1/role/{sales}"),
            &json!({ "version": role["version"], "permissions": "customer:r, contact:r", "current_password": crate::common::ADMIN.1 }),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let res = writer
        .post(
            "/api/v1/customer",
            &json!({ "name": "After Demotion", "status": "Active" }),
        )
        .await;
    api_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(
        writer.get("/api/v1/customer").await.status(),
        StatusCode::OK
    );
    // An administrator revokes it for good.
    let all = admin.json("/api/v1/tokens?all=true").await;
    let id = all["data"][0]["id"].as_str().expect("id").to_string();
    assert_eq!(
        admin.delete(&format!("/api/v1/tokens/{id}")).await.status(),
        StatusCode::NO_CONTENT
    );
    api_error(
        writer.get("/api/v1/customer").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    let events = security_events(&s, start);
    assert_eq!(
        events.iter().filter(|e| *e == "token_created").count(),
        2,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "token_revoked").count(),
        2,
        "{events:?}"
    );
    // The secrets never reach the log.
    for (_, bytes) in s.running.kernel.log_leaves(1, u64::MAX).expect("leaves") {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&read_secret) && !text.contains(&write_secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_limited_in_rate_and_expires() {
    let s = boot(0).await;
    let password = s.add_user("ria", "Sales").await;
    let ria = s.api("ria", &password).await;
    let (secret, _) = made(
        make_token(
            &ria,
            &password,
            json!({ "name": "slow", "scopes": "customer:r", "days": 2, "requests_per_minute": 10 }),
        )
        .await,
    )
    .await;
    let token = Bearer::new(&s, &secret);
    assert_eq!(token.get("/api/v1/customer").await.status(), StatusCode::OK);
    let res = token.get("/api/v1/customer").await;
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(retry, Some(6), "ten a minute: one every six seconds");
    api_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    s.clock.advance(Duration::seconds(6));
    assert_eq!(token.get("/api/v1/customer").await.status(), StatusCode::OK);
    // Two days later it is over.
    s.clock.advance(Duration::days(2));
    api_error(
        token.get("/api/v1/customer").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let ria = s.api("ria", &password).await;
    let list = ria.json("/api/v1/tokens").await;
    assert_eq!(list["data"][0]["expired"], true, "{list}");
    assert!(list["data"][0]["last_used_at"].is_string(), "{list}");
}

/// The secret in the set-up page (`<code id="mfa-secret">…</code>`).
fn between<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    let from = page
        .find(start)
        .map(|i| i + start.len())
        .unwrap_or_else(|| panic!("{start} in {page}"));
    let to = page[from..]
        .find(end)
        .map(|i| from + i)
        .unwrap_or(page.len());
    &page[from..to]
}

fn code_at(s: &TestServer, secret: &[u8]) -> String {
    use nexus_kernel::Clock;
    let step = s.clock.now().unix_timestamp().div_euclid(30) as u64;
    format!("{:06}", nexus_kernel::mfa::hotp(secret, step, 6))
}

/// Sets up the second factor through the security page; returns the secret and the
/// recovery codes.
async fn enrol(s: &TestServer, api: &Api, password: &str) -> (Vec<u8>, Vec<String>) {
    let res = api.htmx_form("/account/mfa/begin", &[]).await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the password first"
    );
    let res = api
        .htmx_form("/account/mfa/begin", &[("current_password", password)])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.expect("page");
    assert!(page.contains("data:image/svg+xml;base64,"), "a QR code");
    let secret = between(&page, "<code id=\"mfa-secret\">", "</code>").to_string();
    let bytes = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .expect("base32");
    let res = api
        .htmx_form("/account/mfa/confirm", &[("code", "000000x")])
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = api
        .htmx_form("/account/mfa/confirm", &[("code", &code_at(s, &bytes))])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.expect("page");
    let codes: Vec<String> = between(&page, "<ol class=\"codes\">", "</ol>")
        .split("<code>")
        .skip(1)
        .map(|c| c.split('<').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{page}");
    (bytes, codes)
}

async fn sign_in(
    s: &TestServer,
    username: &str,
    password: &str,
    code: Option<&str>,
) -> reqwest::Response {
    let mut body = json!({ "username": username, "password": password });
    if let Some(code) = code {
        body["code"] = Value::String(code.into());
    }
    s.client()
        .post(format!("{}/api/v1/session", s.base))
        .json(&body)
        .send()
        .await
        .expect("sign in")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_factor_is_needed_to_sign_in_and_each_code_works_once() {
    let s = boot(0).await;
    let password = s.add_user("mia", "Sales").await;
    let mia = s.api("mia", &password).await;
    let start = s.running.kernel.log_head();
    let (secret, recovery) = enrol(&s, &mia, &password).await;

    // The password alone is not enough any more; the code just used is spent.
    api_error(
        sign_in(&s, "mia", &password, None).await,
        StatusCode::UNAUTHORIZED,
        "code_required",
    )
    .await;
    let used = code_at(&s, &secret);
    let res = sign_in(&s, "mia", &password, Some(&used)).await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(
        body["error"]["fields"]["code"]
            .as_str()
            .unwrap_or_default()
            .contains("already used"),
        "{body}"
    );
    let res = sign_in(&s, "mia", &password, Some("123456")).await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(
        body["error"]["fields"]["code"]
            .as_str()
            .unwrap_or_default()
            .contains("wrong"),
        "{body}"
    );
    // A wrong password with a right code is still a wrong password.
    s.clock.advance(Duration::seconds(30));
    let fresh = code_at(&s, &secret);
    api_error(
        sign_in(&s, "mia", "guess guess guess", Some(&fresh)).await,
        StatusCode::UNAUTHORIZED,
        "bad_credentials",
    )
    .await;
    assert_eq!(
        sign_in(&s, "mia", &password, Some(&fresh)).await.status(),
        StatusCode::OK
    );
    let res = sign_in(&s, "mia", &password, Some(&fresh)).await;
    api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    // A recovery code (typed in capitals, with spaces) works once.
    let typed = recovery[3].replace('-', " ").to_uppercase();
    assert_eq!(
        sign_in(&s, "mia", &password, Some(&typed)).await.status(),
        StatusCode::OK
    );
    api_error(
        sign_in(&s, "mia", &password, Some(&recovery[3])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    )
    .await;

    // The form signs in in two steps; the second needs the ticket, not the password.
    s.clock.advance(Duration::seconds(30));
    let browser = s.client();
    let page = browser
        .get(format!("{}/login", s.base))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("html");
    let pre = between(&page, "name=\"_csrf\" value=\"", "\"").to_string();
    let res = browser
        .post(format!("{}/login", s.base))
        .form(&[
            ("_csrf", pre.as_str()),
            ("username", "mia"),
            ("password", &password),
            ("next", "/"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()
            .get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap_or("").contains("nexus_session="))
    );
    let page = res.text().await.expect("code page");
    let ticket = between(&page, "name=\"ticket\" value=\"", "\"").to_string();
    assert!(!page.contains(&password));
    let res = browser
        .post(format!("{}/login/code", s.base))
        .form(&[
            ("_csrf", pre.as_str()),
            ("ticket", &ticket),
            ("code", "999999"),
            ("next", "/"),
        ])
        .send()
        .await
        .expect("code");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = browser
        .post(format!("{}/login/code", s.base))
        .form(&[
            ("_csrf", pre.as_str()),
            ("ticket", &ticket),
            ("code", &code_at(&s, &secret)),
            ("next", "/"),
        ])
        .send()
        .await
        .expect("code");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()
            .get("set-cookie")
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.starts_with("nexus_session="))
    );
    let res = browser
        .post(format!("{}/login/code", s.base))
        .form(&[
            ("_csrf", pre.as_str()),
            ("ticket", &ticket),
            ("code", "123456"),
            ("next", "/"),
        ])
        .send()
        .await
        .expect("code");
    assert!(
        res.text().await.expect("page").contains("sign in again"),
        "a used ticket is gone"
    );

    // Failed codes count like failed passwords: a few more and the name is locked.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(sign_in(&s, "mia", &password, Some("000000")).await.status());
    }
    let mut expected = vec![StatusCode::UNPROCESSABLE_ENTITY; 5];
    expected.push(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(statuses, expected);
    s.clock.advance(Duration::minutes(20));

    // Turning it off needs the password; then the password alone signs in again.
    let res = mia
        .htmx_form("/account/mfa/off", &[("current_password", "wrong one")])
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = mia
        .htmx_form("/account/mfa/off", &[("current_password", &password)])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        sign_in(&s, "mia", &password, None).await.status(),
        StatusCode::OK
    );

    let events = security_events(&s, start);
    for kind in ["mfa_enabled", "recovery_code_used", "mfa_disabled"] {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
    let refused = s.running.kernel.events_since(start, 1000).expect("events");
    assert!(
        refused.iter().any(|e| e.entity == "sign_in_refused"
            && e.after
                .as_ref()
                .is_some_and(|a| a["reason"] == "second factor")),
        "a wrong code is a refused sign-in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_can_require_a_second_factor() {
    let s = boot(0).await;
    let admin = s.admin().await;
    let password = s.add_user("sol", "Sales").await;
    let sales = crate::security::id_of(&admin, "role", "name", "Sales").await;
    let role: Value = admin.json(&format!("/api/v1/role/{sales}")).await;
    let res = admin
        .patch(
            &format!("/api/v1/role/{sales}"),
            &json!({ "version": role["version"], "require_mfa": true }),
        )
        .await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(
        body["error"]["fields"]["current_password"].is_string(),
        "requiring a second factor is confirmed with the password: {body}"
    );
    let res = admin
        .patch(
            &format!("/api/v1/role/{sales}"),
            &json!({ "version": role["version"], "require_mfa": true,
                "current_password": crate::common::ADMIN.1 }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // Signed in, sol can do nothing but set it up (and see who they are).
    let sol = s.api("sol", &password).await;
    api_error(
        sol.get("/api/v1/customer").await,
        StatusCode::FORBIDDEN,
        "mfa_required",
    )
    .await;
    let me = sol.json("/api/v1/me").await;
    assert_eq!(me["mfa_required"], true, "{me}");
    let res = sol.get("/e/customer").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/account/security")
    );
    let page = sol
        .get("/account/security")
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("Your role requires a second factor"),
        "{page}"
    );
    let (_, _) = enrol(&s, &sol, &password).await;
    assert_eq!(sol.get("/api/v1/customer").await.status(), StatusCode::OK);
    // While the role requires it, it cannot be turned off.
    let res = sol
        .htmx_form("/account/mfa/off", &[("current_password", &password)])
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taking_data_out_is_an_entry_of_the_log() {
    let s = boot(4).await;
    let admin = s.admin().await;
    let start = s.running.kernel.log_head();
    let res = admin.get("/e/customer/export.csv?q=a").await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = admin
        .post("/api/v1/contact/export?format=xlsx", &json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let exports: Vec<Value> = s
        .running
        .kernel
        .events_since(start, 100)
        .expect("events")
        .into_iter()
        .filter(|e| e.entity == "export")
        .map(|e| serde_json::to_value(e.after).expect("json"))
        .collect();
    assert_eq!(exports.len(), 2, "{exports:?}");
    assert_eq!(exports[0]["what"], "customer");
    assert_eq!(exports[0]["how"]["format"], "CSV");
    assert_eq!(exports[0]["how"]["query"], "q=a");
    assert_eq!(exports[0]["username"], "admin");
    assert_eq!(exports[1]["what"], "contact");
    assert_eq!(exports[1]["how"]["format"], "XLSX");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_review_shows_who_may_do_what_and_exports_it() {
    let s = boot(0).await;
    let admin = s.admin().await;
    let password = s.add_user("sam", "Sales").await;
    let sam = s.api("sam", &password).await;
    let (_, _) = made(
        make_token(
            &sam,
            &password,
            json!({ "name": "nightly", "scopes": "customer:r" }),
        )
        .await,
    )
    .await;
    s.add_user("nia", "Viewer").await;
    let review = admin.json("/api/v1/compliance/access").await;
    let rows = review["data"].as_array().expect("rows");
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["username"] == name)
            .unwrap_or_else(|| panic!("{name} in {review}"))
            .clone()
    };
    assert_eq!(rows.len(), 3, "{review}");
    let sam_row = row("sam");
    assert_eq!(sam_row["role"], "Sales");
    assert!(
        sam_row["grants"]
            .as_str()
            .unwrap_or_default()
            .contains("customer:rcwdx")
    );
    assert!(sam_row["last_sign_in"].is_string(), "{sam_row}");
    assert_eq!(sam_row["mfa"], false);
    assert_eq!(sam_row["tokens"][0]["name"], "nightly");
    assert_eq!(sam_row["tokens"][0]["scopes"], "customer:r");
    assert!(row("nia")["last_sign_in"].is_null(), "never signed in");
    // A salesperson may read users but not memberships: no review for them.
    api_error(
        sam.get("/api/v1/compliance/access").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        sam.get("/compliance/access").await.status(),
        StatusCode::FORBIDDEN
    );
    // The page and the CSV, which is an export entry of the log.
    let page = admin
        .get("/compliance/access")
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("Access review") && page.contains("nightly"),
        "{page}"
    );
    let start = s.running.kernel.log_head();
    let res = admin.get("/compliance/access.csv").await;
    assert_eq!(res.status(), StatusCode::OK);
    let csv = res.text().await.expect("csv");
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap_or_default()
            .starts_with("user,username,full_name"),
        "{csv}"
    );
    assert_eq!(lines.count(), 3, "{csv}");
    let events = s.running.kernel.events_since(start, 10).expect("events");
    assert!(
        events.iter().any(|e| e.entity == "export"
            && e.after
                .as_ref()
                .is_some_and(|a| a["what"] == "access review")),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarded_field_is_seen_and_set_only_by_roles_granted_it() {
    let s = boot(5).await;
    let admin = s.admin().await;
    let sal_pw = s.add_user("sal", "Sales").await;
    let sal = s.api("sal", &sal_pw).await;
    let acc_pw = s.add_user("acc", "Accountant").await;
    let acc = s.api("acc", &acc_pw).await;
    let list = acc.json("/api/v1/customer?limit=5").await;
    let with_limit = list["data"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["credit_limit"].is_string()))
        .cloned()
        .unwrap_or_else(|| panic!("a demo customer with a credit limit in {list}"));
    let id = with_limit["id"].as_u64().expect("id");
    let limit = with_limit["credit_limit"].clone();

    // The salesperson reads customers without it: record, list, history, export, tools.
    let one = sal.json(&format!("/api/v1/customer/{id}")).await;
    assert!(
        one.get("credit_limit").is_none() && one["name"].is_string(),
        "{one}"
    );
    let page = sal.json("/api/v1/customer?limit=50").await;
    assert!(!page.to_string().contains("credit_limit"), "{page}");
    let history = sal.json(&format!("/api/v1/customer/{id}/history")).await;
    assert!(!history.to_string().contains("credit_limit"), "{history}");
    assert!(
        admin
            .json(&format!("/api/v1/customer/{id}/history"))
            .await
            .to_string()
            .contains("credit_limit")
    );
    let csv = sal
        .get("/e/customer/export.csv")
        .await
        .text()
        .await
        .expect("csv");
    assert!(
        !csv.lines()
            .next()
            .unwrap_or_default()
            .contains("credit_limit"),
        "{csv}"
    );
    let html = sal.get("/e/customer").await.text().await.expect("grid");
    assert!(!html.contains("Credit limit"), "no column");
    let html = sal
        .get(&format!("/e/customer/{id}"))
        .await
        .text()
        .await
        .expect("record");
    assert!(!html.contains("Credit limit"), "no field on the form");
    let found = sal
        .post(
            "/api/v1/tools/crm.find_customers",
            &json!({ "query": with_limit["name"] }),
        )
        .await
        .json::<Value>()
        .await
        .expect("tool");
    assert!(
        found["result"]["customers"][0]["credit_limit"].is_null(),
        "{found}"
    );
    // …cannot sort, filter or set by it…
    api_error(
        sal.get("/api/v1/customer?sort=credit_limit").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    api_error(
        sal.get("/api/v1/customer?f.credit_limit=1000.00").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let res = sal
        .post(
            "/api/v1/customer",
            &json!({ "name": "Limitless", "status": "Lead", "credit_limit": "1.00" }),
        )
        .await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(
        body["error"]["fields"]["credit_limit"]
            .as_str()
            .unwrap_or_default()
            .contains("may not set"),
        "{body}"
    );
    let res = sal
        .patch(
            &format!("/api/v1/customer/{id}"),
            &json!({ "version": one["version"], "credit_limit": "1.00" }),
        )
        .await;
    api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    // …and editing what they may see keeps it.
    let res = sal
        .patch(
            &format!("/api/v1/customer/{id}"),
            &json!({ "version": one["version"], "city": "Chur" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let after = acc.json(&format!("/api/v1/customer/{id}")).await;
    assert_eq!(after["credit_limit"], limit, "kept");
    assert_eq!(after["city"], "Chur");
    // The accountant sets it; a token narrows it away unless its scopes name it.
    let res = acc
        .patch(
            &format!("/api/v1/customer/{id}"),
            &json!({ "version": after["version"], "credit_limit": "5000.00" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (plain, _) = made(
        make_token(
            &acc,
            &acc_pw,
            json!({ "name": "a", "scopes": "customer:r" }),
        )
        .await,
    )
    .await;
    let (named, _) = made(
        make_token(
            &acc,
            &acc_pw,
            json!({ "name": "b", "scopes": "customer:r, customer.credit_limit:r" }),
        )
        .await,
    )
    .await;
    let read = |token: String| {
        let b = Bearer::new(&s, &token);
        async move {
            b.get(&format!("/api/v1/customer/{id}"))
                .await
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    assert!(read(plain).await.get("credit_limit").is_none());
    assert_eq!(read(named).await["credit_limit"], "5000.00");
    // Roles grant it by name; only guarded fields can be named.
    for (grants, ok) in [
        ("customer:r, customer.credit_limit:r", true),
        ("customer.name:r", false),
        ("customer.nope:r", false),
    ] {
        let res = admin
            .post("/api/v1/role", &json!({ "name": format!("R {grants}"), "permissions": grants, "current_password": crate::common::ADMIN.1 }))
            .await;
        assert_eq!(
            res.status().is_success(),
            ok,
            "{grants}: {}",
            res.text().await.unwrap_or_default()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_rule_keeps_a_sales_rep_to_the_customers_they_own() {
    let s = boot(3).await;
    let admin = s.admin().await;
    let rex_pw = s.add_user("rex", "Sales rep").await;
    let rex = s.api("rex", &rex_pw).await;
    let ray_pw = s.add_user("ray", "Sales rep").await;
    let ray = s.api("ray", &ray_pw).await;
    let rex_id = crate::security::id_of(&admin, "user", "username", "rex").await;
    let ray_id = crate::security::id_of(&admin, "user", "username", "ray").await;

    // What a rep makes is theirs; they see only that.
    let mine = rex.customer("Rex Bakery").await;
    assert_eq!(mine["owner"], rex_id, "{mine}");
    let theirs = ray.customer("Ray Roofing").await;
    let list = rex.json("/api/v1/customer").await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["data"][0]["name"], "Rex Bakery");
    let demo = admin.json("/api/v1/customer?limit=1").await["data"][0]["id"].clone();
    for id in [&theirs["id"], &demo] {
        api_error(
            rex.get(&format!("/api/v1/customer/{id}")).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        api_error(
            rex.get(&format!("/api/v1/customer/{id}/history")).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        let res = rex
            .patch(
                &format!("/api/v1/customer/{id}"),
                &json!({ "version": 1, "city": "Bern" }),
            )
            .await;
        api_error(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    let found = rex
        .post("/api/v1/tools/crm.find_customers", &json!({ "query": "" }))
        .await
        .json::<Value>()
        .await
        .expect("tool");
    assert_eq!(found["result"]["total"], 1, "{found}");
    // A rep cannot give a customer away (it would vanish from their sight) nor make one for another.
    let res = rex
        .patch(
            &format!("/api/v1/customer/{}", mine["id"]),
            &json!({ "version": mine["version"], "owner": ray_id }),
        )
        .await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(
        body["error"]["fields"]["owner"]
            .as_str()
            .unwrap_or_default()
            .contains("must stay you"),
        "{body}"
    );
    let res = rex
        .post(
            "/api/v1/customer",
            &json!({ "name": "For Ray", "status": "Lead", "owner": ray_id }),
        )
        .await;
    api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let res = rex
        .patch(
            &format!("/api/v1/customer/{}", mine["id"]),
            &json!({ "version": mine["version"], "city": "Thun" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Whoever may change every customer hands it over; then it is the other rep's.
    let now = admin
        .json(&format!("/api/v1/customer/{}", mine["id"]))
        .await;
    let res = admin
        .patch(
            &format!("/api/v1/customer/{}", mine["id"]),
            &json!({ "version": now["version"], "owner": ray_id }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    api_error(
        rex.get(&format!("/api/v1/customer/{}", mine["id"])).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(ray.json("/api/v1/customer").await["total"], 2);
    // The rule bounds tokens and grants like any other right.
    let res = make_token(
        &rex,
        &rex_pw,
        json!({ "name": "all", "scopes": "customer:r" }),
    )
    .await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(
        body["error"]["fields"]["scopes"]
            .as_str()
            .unwrap_or_default()
            .contains("customer:r"),
        "{body}"
    );
    let (token, _) = made(
        make_token(
            &rex,
            &rex_pw,
            json!({ "name": "own", "scopes": "customer:r@own" }),
        )
        .await,
    )
    .await;
    let via = Bearer::new(&s, &token)
        .get("/api/v1/customer")
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(via["total"], 0, "rex owns none now: {via}");
    let res = admin
        .post("/api/v1/role", &json!({ "name": "Odd", "permissions": "contact:r@own", "current_password": crate::common::ADMIN.1 }))
        .await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(body.to_string().contains("owner"), "{body}");
}

/// What a hostile review of tokens found stays fixed: a token cannot change access even
/// when its scopes name it, a narrower token cannot download what a wider one exported,
/// an idempotent replay answers only the credential that sent the first request, a new
/// token's secret is never kept for replays, and setting a user's password revokes
/// their tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_cannot_widen_access_or_outlive_its_users_password() {
    use reqwest::Method;
    let s = boot(3).await;
    let admin = s.admin().await;
    let admin_password = crate::common::ADMIN.1;
    let (wide, _) = made(
        make_token(
            &admin,
            admin_password,
            json!({ "name": "wide", "scopes": "user:rcwd, role:rwd, customer:rcx" }),
        )
        .await,
    )
    .await;
    let wide = Bearer::new(&s, &wide);
    let (narrow, _) = made(
        make_token(
            &admin,
            admin_password,
            json!({ "name": "narrow", "scopes": "customer:r" }),
        )
        .await,
    )
    .await;
    let narrow = Bearer::new(&s, &narrow);

    // Users and roles: readable through the token, never changed through it.
    let sam_password = s.add_user("sam", "Sales").await;
    let sam_id = crate::security::id_of(&admin, "user", "username", "sam").await;
    let user: Value = wide
        .get(&format!("/api/v1/user/{sam_id}"))
        .await
        .json()
        .await
        .expect("user");
    let res = wide
        .send(
            Method::PATCH,
            &format!("/api/v1/user/{sam_id}"),
            &json!({ "version": user["version"], "active": false }),
            None,
        )
        .await;
    api_error(res, StatusCode::FORBIDDEN, "token_not_allowed").await;
    let sales = crate::security::id_of(&admin, "role", "name", "Sales").await;
    let role: Value = wide
        .get(&format!("/api/v1/role/{sales}"))
        .await
        .json()
        .await
        .expect("role");
    let res = wide
        .send(
            Method::PATCH,
            &format!("/api/v1/role/{sales}"),
            &json!({ "version": role["version"], "permissions": "*:rcwdx" }),
            None,
        )
        .await;
    api_error(res, StatusCode::FORBIDDEN, "token_not_allowed").await;
    let res = wide
        .send(
            Method::POST,
            "/api/v1/user",
            &json!({ "username": "mallory", "name": "M", "role": sales, "active": true, "password": "mallory password 1" }),
            None,
        )
        .await;
    api_error(res, StatusCode::FORBIDDEN, "token_not_allowed").await;
    api_error(
        wide.delete(&format!("/api/v1/role/{sales}")).await,
        StatusCode::FORBIDDEN,
        "token_not_allowed",
    )
    .await;
    assert_eq!(
        admin.json(&format!("/api/v1/role/{sales}")).await["permissions"],
        role["permissions"],
        "nothing changed"
    );

    // An export made through the wide token is not the narrow token's to download.
    let res = wide.post("/api/v1/customer/export", &json!({})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let done = crate::spine::finished_job(&admin, &location).await;
    assert_eq!(done["state"], "done", "{done}");
    let download = done["download"].as_str().expect("a download").to_owned();
    let file = wide.get(&download).await;
    assert_eq!(file.status(), StatusCode::OK);
    let csv = file.text().await.expect("csv");
    let first = csv
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(1))
        .expect("a customer's name")
        .to_owned();
    let refused = narrow.get(&download).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let page = refused.text().await.expect("page");
    assert!(!page.contains(&first), "no record in the refusal");

    // A replayed key answers only the credential that sent it first.
    let body = json!({ "name": "Keyed Ltd", "status": "Active" });
    let first = wide
        .send(Method::POST, "/api/v1/customer", &body, Some("k-1"))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = wide
        .send(Method::POST, "/api/v1/customer", &body, Some("k-1"))
        .await;
    assert_eq!(
        again.status(),
        StatusCode::CREATED,
        "the same token replays"
    );
    let other = narrow
        .send(Method::POST, "/api/v1/customer", &body, Some("k-1"))
        .await;
    assert_eq!(
        other.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "another credential is another request: {}",
        other.text().await.unwrap_or_default()
    );
    let list = admin.json("/api/v1/customer?f.name=Keyed%20Ltd").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");

    // A new token's answer is never kept: the same key makes a second, different one.
    let sam = s.api("sam", &sam_password).await;
    let request = |key: &'static str| {
        sam.client
            .post(sam.url("/api/v1/tokens"))
            .header("x-csrf-token", &sam.csrf)
            .header("idempotency-key", key)
            .json(&json!({ "name": "script", "scopes": "customer:r", "current_password": sam_password }))
            .send()
    };
    let (one, _) = made(request("t-1").await.expect("POST")).await;
    let (two, _) = made(request("t-1").await.expect("POST")).await;
    assert_ne!(one, two);
    let sams = Bearer::new(&s, &one);
    assert_eq!(sams.get("/api/v1/customer").await.status(), StatusCode::OK);

    // A new password (an administrator's reset) revokes every token of its user.
    let version = admin.json(&format!("/api/v1/user/{sam_id}")).await["version"].clone();
    let res = admin
        .patch(
            &format!("/api/v1/user/{sam_id}"),
            &json!({ "version": version, "password": "a brand new secret", "current_password": admin_password }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    for secret in [&one, &two] {
        api_error(
            Bearer::new(&s, secret).get("/api/v1/customer").await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    assert_eq!(
        admin.json("/api/v1/tokens?all=true").await["data"]
            .as_array()
            .map(|t| t.iter().filter(|t| t["username"] == "sam").count()),
        Some(0)
    );
}
