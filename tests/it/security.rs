//! Found by a hostile test of main: granting is bounded by what the granter holds, the
//! last way to administration stays, and a password reset ends the user's sessions.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Api, api_error, boot};

pub(crate) async fn id_of(api: &Api, entity: &str, field: &str, value: &str) -> u64 {
    let list = api
        .json(&format!(
            "/api/v1/{entity}?f.{field}={}",
            value.replace(' ', "%20")
        ))
        .await;
    list["data"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r[field] == value))
        .and_then(|r| r["id"].as_u64())
        .unwrap_or_else(|| panic!("{entity} {value} in {list}"))
}

async fn role(api: &Api, name: &str, permissions: &str) -> u64 {
    let res = api
        .post(
            "/api/v1/role",
            &json!({ "name": name, "permissions": permissions }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "role {name}");
    res.json::<Value>().await.expect("json")["id"]
        .as_u64()
        .expect("id")
}

async fn field_error(res: reqwest::Response, field: &str, words: &str) {
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let message = body["error"]["fields"][field].as_str().unwrap_or_default();
    assert!(message.contains(words), "{field}: {message:?} in {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_grants_more_than_they_hold() {
    let s = boot(0).await;
    let admin = s.admin().await;
    let admin_role = id_of(&admin, "role", "name", "Administrator").await;
    let viewer_role = id_of(&admin, "role", "name", "Viewer").await;
    let admin_user = id_of(&admin, "user", "username", "admin").await;
    role(
        &admin,
        "User manager",
        "user:rcw, role:r, customer:r, contact:r, company:r",
    )
    .await;
    let editor_role = role(&admin, "Role editor", "role:rw").await;
    let uma_password = s.add_user("uma", "User manager").await;
    let uma = s.api("uma", &uma_password).await;
    let password = s.add_user("reo", "Role editor").await;
    let reo = s.api("reo", &password).await;

    // A user manager cannot make an administrator, nor reset one's password…
    let res = uma
        .post(
            "/api/v1/user",
            &json!({ "username": "mallory", "full_name": "Mallory",
            "role": admin_role, "active": true, "password": "mallory password 1" }),
        )
        .await;
    field_error(res, "role", "within your own rights").await;
    let version = admin.json(&format!("/api/v1/user/{admin_user}")).await["version"].clone();
    let res = uma
        .patch(
            &format!("/api/v1/user/{admin_user}"),
            &json!({ "version": version, "password": "taken over 123" }),
        )
        .await;
    field_error(res, "role", "holds more rights than you").await;
    assert!(
        s.api(crate::common::ADMIN.0, crate::common::ADMIN.1)
            .await
            .csrf
            .len()
            > 10,
        "the administrator's password still works"
    );
    // …but may give a role within their own rights, confirming with their own password.
    let vic = json!({ "username": "vic", "full_name": "Vic",
        "role": viewer_role, "active": true, "password": "vic password 123" });
    let res = uma.post("/api/v1/user", &vic).await;
    field_error(res, "current_password", "needs your own password").await;
    let mut confirmed = vic.clone();
    confirmed["current_password"] = json!("not my password at all");
    let res = uma.post("/api/v1/user", &confirmed).await;
    field_error(res, "current_password", "not your password").await;
    confirmed["current_password"] = json!(uma_password);
    let res = uma.post("/api/v1/user", &confirmed).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // A role editor cannot rewrite their own role to everything, nor touch the
    // administrator's role.
    let version = admin.json(&format!("/api/v1/role/{editor_role}")).await["version"].clone();
    let res = reo
        .patch(
            &format!("/api/v1/role/{editor_role}"),
            &json!({ "version": version, "permissions": "*:rcwdx" }),
        )
        .await;
    field_error(res, "permissions", "beyond it").await;
    let version = admin.json(&format!("/api/v1/role/{admin_role}")).await["version"].clone();
    let res = reo
        .patch(
            &format!("/api/v1/role/{admin_role}"),
            &json!({ "version": version, "description": "mine now" }),
        )
        .await;
    field_error(res, "permissions", "allows more than yours").await;
    let mine = admin.json(&format!("/api/v1/role/{editor_role}")).await;
    assert_eq!(mine["permissions"], "role:rw", "{mine}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_way_to_administration_stays() {
    let s = boot(0).await;
    let admin = s.admin().await;
    let admin_role = id_of(&admin, "role", "name", "Administrator").await;
    let version = admin.json(&format!("/api/v1/role/{admin_role}")).await["version"].clone();
    let res = admin
        .patch(
            &format!("/api/v1/role/{admin_role}"),
            &json!({ "version": version, "permissions": "customer:r" }),
        )
        .await;
    let body = api_error(res, StatusCode::CONFLICT, "conflict").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("without an administrator")),
        "{body}"
    );
    // With a second administrator, the first one may step down.
    let password = s.add_user("ada2", "Administrator").await;
    let second = s.api("ada2", &password).await;
    let first = id_of(&admin, "user", "username", "admin").await;
    let viewer = id_of(&admin, "role", "name", "Viewer").await;
    let version = second.json(&format!("/api/v1/user/{first}")).await["version"].clone();
    let res = second
        .patch(
            &format!("/api/v1/user/{first}"),
            &json!({ "version": version, "role": viewer, "current_password": password }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Now ada2 is the last one: removing the grant is refused again.
    let version = second.json(&format!("/api/v1/role/{admin_role}")).await["version"].clone();
    let res = second
        .patch(
            &format!("/api/v1/role/{admin_role}"),
            &json!({ "version": version, "permissions": "customer:r" }),
        )
        .await;
    api_error(res, StatusCode::CONFLICT, "conflict").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_ends_the_users_sessions_and_is_in_the_history() {
    let s = boot(0).await;
    let admin = s.admin().await;
    let password = s.add_user("sam", "Sales").await;
    let sam = s.api("sam", &password).await;
    assert_eq!(sam.get("/api/v1/me").await.status(), StatusCode::OK);
    let id = id_of(&admin, "user", "username", "sam").await;
    s.clock.advance(time::Duration::minutes(5));
    let version = admin.json(&format!("/api/v1/user/{id}")).await["version"].clone();
    let res = admin
        .patch(
            &format!("/api/v1/user/{id}"),
            &json!({ "version": version, "password": "a brand new secret",
                "current_password": crate::common::ADMIN.1 }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    api_error(
        sam.get("/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let history = admin.json(&format!("/api/v1/user/{id}/history")).await;
    let latest = &history["data"][0];
    assert!(latest["after"]["password_changed"].is_string(), "{latest}");
    assert_ne!(
        latest["before"], latest["after"],
        "the reset is a visible change"
    );
    let text = history.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("a brand new secret"),
        "no hash, no password"
    );
    let again = s.api("sam", "a brand new secret").await;
    assert_eq!(again.get("/api/v1/me").await.status(), StatusCode::OK);

    // Deactivating takes access away (no confirmation); giving it back is a change of
    // access and needs the administrator's own password.
    let version = admin.json(&format!("/api/v1/user/{id}")).await["version"].clone();
    let res = admin
        .patch(
            &format!("/api/v1/user/{id}"),
            &json!({ "version": version, "active": false }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let version = admin.json(&format!("/api/v1/user/{id}")).await["version"].clone();
    let back = json!({ "version": version, "active": true });
    let res = admin.patch(&format!("/api/v1/user/{id}"), &back).await;
    field_error(res, "current_password", "Reactivating a user").await;
    let mut confirmed = back.clone();
    confirmed["current_password"] = json!(crate::common::ADMIN.1);
    let res = admin.patch(&format!("/api/v1/user/{id}"), &confirmed).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modules_api_meets_the_entitys_field_limits() {
    let s = boot(0).await;
    let api = s.admin().await;
    let rent = crate::ledger::account(&api, "6200").await;
    let bank = crate::ledger::account(&api, "1120").await;
    let day = s.today().to_string();
    let tb = api
        .json("/api/v1/ledger/trial-balance?from=2000-01&to=2100-12")
        .await;
    let entry = |narration: String, reference: String, debit: Value| {
        json!({ "date": day, "narration": narration, "reference": reference, "lines": [
            { "account": rent, "debit": debit }, { "account": bank, "credit": "10.00" }
        ]})
    };
    let res = api
        .post(
            "/api/v1/ledger/journal",
            &entry(
                format!("{}\0", "n".repeat(100_000)),
                "R".into(),
                json!("10.00"),
            ),
        )
        .await;
    field_error(res, "narration", "").await;
    let res = api
        .post(
            "/api/v1/ledger/journal",
            &entry("Rent".into(), "R".repeat(500_000), json!("10.00")),
        )
        .await;
    field_error(res, "reference", "at most 60 characters").await;
    let res = api
        .post(
            "/api/v1/ledger/journal",
            &entry("Rent".into(), "R".into(), json!(10)),
        )
        .await;
    field_error(res, "lines", "decimal string").await;
    let after = api
        .json("/api/v1/ledger/trial-balance?from=2000-01&to=2100-12")
        .await;
    assert_eq!(after, tb, "nothing was posted");
    let res = api
        .post(
            "/api/v1/ledger/journal",
            &entry("Rent".into(), "R-1".into(), json!("10.00")),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "the same entry within the limits posts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_for_the_scraper_and_administrators_only() {
    let s = boot(0).await;
    let url = format!("{}/metrics", s.base);
    let anonymous = s.client().get(&url).send().await.expect("GET");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .is_ok_and(|v| v.starts_with("Bearer")),
        "says how to authenticate"
    );
    let token = std::fs::read_to_string(s.dir.path().join("data/metrics.token"))
        .expect("the token file is made on first start");
    assert_eq!(token.trim().len(), 64, "32 random bytes as hex");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.dir.path().join("data/metrics.token"))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "readable by the service user only");
    }
    let wrong = s
        .client()
        .get(&url)
        .bearer_auth("0".repeat(64))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let scraped = s
        .client()
        .get(&url)
        .bearer_auth(token.trim())
        .send()
        .await
        .expect("GET");
    assert_eq!(scraped.status(), StatusCode::OK);
    let text = scraped.text().await.expect("text");
    assert!(text.contains("nexus_http_responses_total"), "{text}");
    // Signed in: an administrator reads them, anyone else is refused.
    let admin = s.admin().await;
    assert_eq!(admin.get("/metrics").await.status(), StatusCode::OK);
    let password = s.add_user("sid", "Sales").await;
    let sid = s.api("sid", &password).await;
    assert_eq!(sid.get("/metrics").await.status(), StatusCode::FORBIDDEN);
    // The API's description stays public on purpose: it names entities and fields,
    // never a record.
    let doc = s
        .client()
        .get(format!("{}/api/v1/openapi.json", s.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(doc.status(), StatusCode::OK);
}

/// A user sees where they are signed in and ends a session they do not recognise (a
/// lost laptop): it stops working at once, the others go on, and another user's
/// sessions are not theirs to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_lists_and_ends_their_own_sessions() {
    let s = boot(0).await;
    let laptop = s.admin().await;
    let phone = s.admin().await;
    let list = phone.json("/api/v1/sessions").await;
    let sessions = list["data"].as_array().expect("data");
    assert_eq!(sessions.len(), 2, "{list}");
    assert_eq!(sessions.iter().filter(|x| x["current"] == true).count(), 1);
    assert!(
        sessions.iter().all(|x| x["address"] == "127.0.0.1"),
        "{list}"
    );
    assert!(
        !list.to_string().contains(&laptop.csrf),
        "no secret in the list"
    );
    let other = sessions
        .iter()
        .find(|x| x["current"] == false)
        .and_then(|x| x["id"].as_str())
        .expect("the laptop's session")
        .to_string();
    // Bob cannot end the administrator's session: it is not his.
    let bob_pw = s.add_user("bob", "Sales").await;
    let bob = s.api("bob", &bob_pw).await;
    api_error(
        bob.delete(&format!("/api/v1/sessions/{other}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    api_error(
        phone.delete("/api/v1/sessions/not-an-id").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(laptop.get("/api/v1/me").await.status(), StatusCode::OK);
    // The phone ends the laptop's session.
    let res = phone.delete(&format!("/api/v1/sessions/{other}")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        laptop.get("/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(phone.get("/api/v1/me").await.status(), StatusCode::OK);
    assert_eq!(bob.get("/api/v1/me").await.status(), StatusCode::OK);
    // The page lists what is left, and the ending is in the log.
    let page = phone.get("/sessions").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("html").contains("this session"));
    let events = s.running.kernel.events_since(0, 100_000).expect("events");
    assert!(events.iter().any(|e| e.entity == "session_revoked"));
}
