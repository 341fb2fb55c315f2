//! The JSON API: CRUD, versions, permissions, tenancy and every bad input the issue
//! lists, each with a clear 4xx and nothing stored or changed.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ADMIN, api_error, boot};

#[tokio::test]
async fn create_read_update_delete_with_versions_and_history() {
    let s = boot(0).await;
    let api = s.admin().await;
    let created = api
        .post("/api/v1/customer", &json!({ "name": "Globex AG", "status": "Lead", "credit_limit": "2500.10", "customer_since": "2024-02-29" }))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let c: Value = created.json().await.expect("json");
    assert_eq!(location, format!("/api/v1/customer/{}", c["id"]));
    assert_eq!(
        c["credit_limit"], "2500.10",
        "money comes back exact, as a string"
    );
    assert_eq!(c["version"], 1);

    let id = c["id"].as_u64().expect("id");
    let updated: Value = api
        .patch(
            &format!("/api/v1/customer/{id}"),
            &json!({ "version": 1, "city": "Basel", "status": "Active" }),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["name"], "Globex AG");
    assert_eq!(updated["city"], "Basel");

    let history = api.json(&format!("/api/v1/customer/{id}/history")).await;
    let entries = history["data"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["op"], "update");
    assert_eq!(entries[0]["before"]["status"], "Lead");
    assert_eq!(entries[0]["after"]["status"], "Active");
    assert_eq!(entries[0]["actor_name"], "Ada Admin");
    assert_eq!(entries[0]["prev_hash"].as_str().map(str::len), Some(64));

    let listed = api.json("/api/v1/customer?q=globex").await;
    assert_eq!(listed["total"], 1);

    let gone = api
        .delete(&format!("/api/v1/customer/{id}?version=2"))
        .await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    api_error(
        api.get(&format!("/api/v1/customer/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let report = s.running.kernel.verify_audit().expect("chain verifies");
    assert!(report.entries >= 3);
}

#[tokio::test]
async fn a_stale_update_is_refused_and_the_newer_change_survives() {
    let s = boot(0).await;
    let ada = s.admin().await;
    let bob_pw = s.add_user("bob", "Sales").await;
    let bob = s.api("bob", &bob_pw).await;
    let c = ada.customer("Initech").await;
    let id = c["id"].as_u64().expect("id");
    let first = bob
        .patch(
            &format!("/api/v1/customer/{id}"),
            &json!({ "version": 1, "city": "Austin" }),
        )
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let stale = ada
        .patch(
            &format!("/api/v1/customer/{id}"),
            &json!({ "version": 1, "city": "Dallas" }),
        )
        .await;
    let body = api_error(stale, StatusCode::CONFLICT, "stale").await;
    let msg = body["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains("changed by bob") && msg.contains("reload"),
        "{msg}"
    );
    let now = ada.json(&format!("/api/v1/customer/{id}")).await;
    assert_eq!(now["city"], "Austin");
    let no_version = ada
        .patch(
            &format!("/api/v1/customer/{id}"),
            &json!({ "city": "Dallas" }),
        )
        .await;
    let body = api_error(no_version, StatusCode::BAD_REQUEST, "malformed").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("version"))
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let s = boot(5).await;
    let api = s.admin().await;
    let existing = api.customer("Keep Me").await;
    let id = existing["id"].as_u64().expect("id");
    let head_before = s.running.kernel.log_head();

    // Malformed JSON, a JSON value that is not an object, the wrong content type.
    let raw = |body: &'static str, ct: &'static str| {
        api.client
            .post(api.url("/api/v1/customer"))
            .header("x-csrf-token", &api.csrf)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let body = api_error(
        raw("{\"name\": ", "application/json").await.expect("send"),
        StatusCode::BAD_REQUEST,
        "malformed",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid JSON"))
    );
    api_error(
        raw("[1, 2]", "application/json").await.expect("send"),
        StatusCode::BAD_REQUEST,
        "malformed",
    )
    .await;
    api_error(
        raw("name=x", "text/plain").await.expect("send"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    // Wrong types, missing required fields, unknown fields: all reported per field.
    let res = api.post("/api/v1/customer", &json!({ "credit_limit": 12.5, "customer_since": "31/01/2026", "surprise": 1, "status": 7 })).await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let fields = body["error"]["fields"].as_object().expect("fields");
    for f in [
        "name",
        "status",
        "credit_limit",
        "customer_since",
        "surprise",
    ] {
        assert!(fields.contains_key(f), "{f} should be reported: {body}");
    }
    assert!(
        fields["name"]
            .as_str()
            .is_some_and(|m| m.contains("required"))
    );
    assert!(
        fields["credit_limit"]
            .as_str()
            .is_some_and(|m| m.contains("decimal string"))
    );

    // Oversize bodies.
    let huge = "x".repeat(2 * 1024 * 1024);
    let res = api.post("/api/v1/customer", &json!({ "name": huge })).await;
    api_error(res, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;

    // Unknown entities, unknown and malformed ids, unknown routes and methods.
    api_error(
        api.get("/api/v1/spaceship").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    api_error(
        api.get("/api/v1/customer/987654").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    api_error(
        api.get("/api/v1/customer/abc").await,
        StatusCode::BAD_REQUEST,
        "malformed",
    )
    .await;
    api_error(
        api.get("/api/v1/customer?limit=100000").await,
        StatusCode::BAD_REQUEST,
        "malformed",
    )
    .await;
    api_error(
        api.get("/api/v1/customer?sort=notes").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    api_error(
        api.get("/api/v1/nowhere/at/all/here").await,
        StatusCode::NOT_FOUND,
        "no_route",
    )
    .await;
    let put = api
        .client
        .put(api.url(&format!("/api/v1/customer/{id}")))
        .send()
        .await
        .expect("PUT");
    api_error(put, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    // A forged or missing CSRF token.
    let forged = api
        .client
        .patch(api.url(&format!("/api/v1/customer/{id}")))
        .header("x-csrf-token", "forged")
        .json(&json!({ "version": 1, "name": "Hijacked" }))
        .send()
        .await
        .expect("PATCH");
    api_error(forged, StatusCode::FORBIDDEN, "csrf").await;
    let missing = api
        .client
        .delete(api.url(&format!("/api/v1/customer/{id}")))
        .send()
        .await
        .expect("DELETE");
    api_error(missing, StatusCode::FORBIDDEN, "csrf").await;

    // Nothing above stored anything.
    assert_eq!(
        s.running.kernel.log_head(),
        head_before,
        "no change-log entry was written"
    );
    let kept = api.json(&format!("/api/v1/customer/{id}")).await;
    assert_eq!(kept["name"], "Keep Me");
    assert_eq!(kept["version"], 1);
    s.running.kernel.verify_audit().expect("chain verifies");
}

#[tokio::test]
async fn another_companys_records_are_invisible() {
    let s = boot(0).await;
    let ada = s.admin().await;
    let secret = ada.customer("Our Secret Client").await;
    let id = secret["id"].as_u64().expect("id");
    let k = &s.running.kernel;
    let other = k
        .create_company("Rival GmbH", "EUR")
        .await
        .expect("company");
    let role = k.role_by_name(other, "Administrator").expect("role");
    k.create_user(other, "rival", "Rita Rival", "rival password 1", role)
        .await
        .expect("user");
    let rival = s.api("rival", "rival password 1").await;

    api_error(
        rival.get(&format!("/api/v1/customer/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    api_error(
        rival.get(&format!("/api/v1/customer/{id}/history")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = rival
        .patch(
            &format!("/api/v1/customer/{id}"),
            &json!({ "version": 1, "name": "Stolen" }),
        )
        .await;
    api_error(res, StatusCode::NOT_FOUND, "not_found").await;
    api_error(
        rival.delete(&format!("/api/v1/customer/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let listed = rival.json("/api/v1/customer").await;
    assert_eq!(listed["total"], 0);
    let me = rival.json("/api/v1/me").await;
    assert_eq!(me["company"]["name"], "Rival GmbH");
    // Pointing a contact at our customer is refused as if it did not exist.
    let res = rival
        .post("/api/v1/contact", &json!({ "name": "Spy", "customer": id }))
        .await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(
        body["error"]["fields"]["customer"]
            .as_str()
            .is_some_and(|m| m.contains("no customer"))
    );
    // The HTML side says the same.
    let page = rival.get(&format!("/e/customer/{id}")).await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let unchanged = ada.json(&format!("/api/v1/customer/{id}")).await;
    assert_eq!(unchanged["name"], "Our Secret Client");
}

#[tokio::test]
async fn roles_decide_what_each_user_may_do() {
    let s = boot(3).await;
    let viewer_pw = s.add_user("vera", "Viewer").await;
    let vera = s.api("vera", &viewer_pw).await;
    assert_eq!(vera.json("/api/v1/customer").await["total"], 3);
    let res = vera
        .post(
            "/api/v1/customer",
            &json!({ "name": "Nope", "status": "Lead" }),
        )
        .await;
    let body = api_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(
        body["error"]["message"],
        "You are not allowed to create customers"
    );
    api_error(
        vera.get("/api/v1/user").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let export = vera.get("/e/customer/export.csv").await;
    assert_eq!(export.status(), StatusCode::FORBIDDEN);
    let admin_page = vera.get("/admin").await;
    assert_eq!(admin_page.status(), StatusCode::FORBIDDEN);
    // An administrator may change a role's permissions; the change applies at once.
    let ada = s.admin().await;
    let roles = ada.json("/api/v1/role?q=viewer").await;
    let role = &roles["data"][0];
    let res = ada
        .patch(
            &format!("/api/v1/role/{}", role["id"]),
            &json!({ "version": role["version"], "permissions": "customer:rc, contact:r",
                "current_password": crate::common::ADMIN.1 }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = vera
        .post(
            "/api/v1/customer",
            &json!({ "name": "Now Allowed", "status": "Lead" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn sign_in_is_throttled_and_sign_out_ends_the_session() {
    let s = boot(0).await;
    let client = s.client();
    let login = |password: &'static str| {
        client
            .post(format!("{}/api/v1/session", s.base))
            .json(&json!({ "username": ADMIN.0, "password": password }))
            .send()
    };
    for _ in 0..5 {
        api_error(
            login("wrong wrong wrong").await.expect("send"),
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
        )
        .await;
    }
    let locked = login("correct horse battery").await.expect("send");
    assert!(locked.headers().contains_key("retry-after"));
    api_error(locked, StatusCode::TOO_MANY_REQUESTS, "throttled").await;

    let bob_pw = s.add_user("bob", "Sales").await;
    let bob = s.api("bob", &bob_pw).await;
    assert_eq!(bob.get("/api/v1/me").await.status(), StatusCode::OK);
    let out = bob.delete("/api/v1/session").await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    api_error(
        bob.get("/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn the_openapi_description_covers_every_entity() {
    let s = boot(0).await;
    let api = s.admin().await;
    let doc = api.json("/api/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    for e in ["company", "role", "user", "customer", "contact"] {
        assert!(doc["paths"][format!("/api/v1/{e}")].is_object(), "{e}");
    }
    assert_eq!(
        doc["components"]["schemas"]["customer"]["properties"]["status"]["enum"][0],
        "Lead"
    );
}
