//! The browser side over real HTTPS: setup, sign-in with CSRF, lists, forms with
//! field errors, inline edits, live updates over SSE, TLS administration, headers.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{ADMIN, boot, boot_fresh, client_trusting, next_event};

/// The value of `name="…" value="…"` in a page.
fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')?;
    Some(rest[v..v + end].to_string())
}

#[tokio::test]
async fn first_boot_setup_creates_the_administrator_once() {
    let s = boot_fresh(0).await;
    let setup_url = s.running.setup_url.clone().expect("setup url printed");
    let client = s.client();
    // A wrong token gets nowhere.
    let wrong = client
        .get(format!("{}/setup?token=guess", s.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let form = client.get(&setup_url).send().await.expect("GET setup");
    assert_eq!(form.status(), StatusCode::OK);
    let html = form.text().await.expect("html");
    let csrf = hidden(&html, "_csrf").expect("csrf field");
    let token = hidden(&html, "token").expect("token field");
    let post = |confirm: &'static str, csrf: String| {
        client
            .post(format!("{}/setup", s.base))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("token", token.as_str()),
                ("username", "root"),
                ("full_name", "Rooty"),
                ("password", "long enough pw"),
                ("confirm", confirm),
            ])
            .send()
    };
    let mismatch = post("something else", csrf.clone()).await.expect("POST");
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        mismatch
            .text()
            .await
            .expect("html")
            .contains("The two passwords differ")
    );
    let forged = post("long enough pw", "forged".into()).await.expect("POST");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let ok = post("long enough pw", csrf.clone()).await.expect("POST");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let home = client
        .get(format!("{}/", s.base))
        .send()
        .await
        .expect("home");
    assert!(home.text().await.expect("html").contains("Good day, Rooty"));
    let again = post("long enough pw", csrf).await.expect("POST");
    assert_eq!(
        again.status(),
        StatusCode::FORBIDDEN,
        "the token works once"
    );
}

#[tokio::test]
async fn sign_in_needs_the_form_token_and_lands_on_the_asked_page() {
    let s = boot(2).await;
    let client = s.client();
    let page = client
        .get(format!("{}/e/customer", s.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()["location"], "/login?next=%2Fe%2Fcustomer");
    let login = client
        .get(format!("{}/login?next=%2Fe%2Fcustomer", s.base))
        .send()
        .await
        .expect("GET");
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite"),
        "{cookie}"
    );
    let html = login.text().await.expect("html");
    let csrf = hidden(&html, "_csrf").expect("csrf");
    let forged = client
        .post(format!("{}/login", s.base))
        .form(&[
            ("_csrf", "0000"),
            ("username", ADMIN.0),
            ("password", ADMIN.1),
            ("next", "/e/customer"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let wrong = client
        .post(format!("{}/login", s.base))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("username", ADMIN.0),
            ("password", "nope nope nope"),
            ("next", "/e/customer"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong
            .text()
            .await
            .expect("html")
            .contains("Wrong login name or password")
    );
    let ok = client
        .post(format!("{}/login", s.base))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("username", ADMIN.0),
            ("password", ADMIN.1),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        ok.headers()["location"],
        "/",
        "an off-site destination is replaced"
    );
    let session_cookie = ok.headers()["set-cookie"].to_str().expect("cookie");
    assert!(
        session_cookie.starts_with("nexus_session=")
            && session_cookie.contains("Secure; HttpOnly; SameSite=Lax")
    );
}

#[tokio::test]
async fn the_grid_sorts_filters_pages_and_edits_inline() {
    let s = boot(120).await;
    let api = s.admin().await;
    let page = api.get("/e/customer?sort=name&limit=50").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("1–50 of 120"), "pager");
    for module in [
        "Ledger",
        "CRM",
        "HR",
        "EPM",
        "Projects",
        "Compliance",
        "Assistant",
        "Admin",
    ] {
        assert!(
            html.contains(&format!("<span class=\"label\">{module}</span>")),
            "{module} in the navigation"
        );
    }
    // htmx asks for the table only.
    let partial = api
        .client
        .get(api.url("/e/customer?f.city=Zurich&offset=0"))
        .header("hx-request", "true")
        .send()
        .await
        .expect("GET");
    let partial = partial.text().await.expect("html");
    assert!(
        partial.starts_with("<div") && partial.contains("id=\"grid\""),
        "a partial, not a page: {}",
        &partial[..80.min(partial.len())]
    );
    assert!(!partial.contains("<html"));
    assert!(partial.contains("Zurich") && !partial.contains(">Berlin<"));

    let c = api.customer("Inline Corp").await;
    let id = c["id"].as_u64().expect("id");
    let editor = api
        .client
        .get(api.url(&format!("/e/customer/{id}/cell/city")))
        .header("hx-request", "true")
        .send()
        .await
        .expect("GET");
    assert!(
        editor
            .text()
            .await
            .expect("html")
            .contains("form class=\"inline\"")
    );
    let saved = api
        .htmx_form(
            &format!("/e/customer/{id}/cell/city"),
            &[("version", "1"), ("city", "Lugano")],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let row = saved.text().await.expect("html");
    assert!(
        row.contains("Lugano") && row.contains("City saved"),
        "{row}"
    );
    let stale = api
        .htmx_form(
            &format!("/e/customer/{id}/cell/city"),
            &[("version", "1"), ("city", "Chur")],
        )
        .await;
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    assert!(
        stale
            .text()
            .await
            .expect("html")
            .contains("was changed by Ada Admin")
    );
    let bad = api
        .htmx_form(
            &format!("/e/customer/{id}/cell/credit_limit"),
            &[("version", "2"), ("credit_limit", "lots")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.expect("html").contains("is not an amount"));
    let now = api.json(&format!("/api/v1/customer/{id}")).await;
    assert_eq!(
        (now["city"].as_str(), now["version"].as_u64()),
        (Some("Lugano"), Some(2))
    );
}

#[tokio::test]
async fn forms_show_field_errors_and_keep_what_was_typed() {
    let s = boot(0).await;
    let api = s.admin().await;
    let res = api
        .htmx_form(
            "/e/customer",
            &[
                ("name", "Typed Name AG"),
                ("email", "nope"),
                ("status", "Active"),
                ("credit_limit", "1.005"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.expect("html");
    assert!(
        html.contains("value=\"Typed Name AG\""),
        "the typed name is kept"
    );
    assert!(html.contains("is not an e-mail address"));
    assert!(html.contains("use at most two decimal places"));
    assert!(html.contains("aria-invalid=\"true\""));
    let ok = api
        .htmx_form(
            "/e/customer",
            &[
                ("name", "Typed Name AG"),
                ("email", "a@b.example"),
                ("status", "Active"),
            ],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let target = ok.headers()["hx-redirect"]
        .to_str()
        .expect("redirect")
        .to_string();
    let record = api.get(&target).await.text().await.expect("html");
    assert!(record.contains("Customer created") && record.contains("History"));
    // A plain (no JavaScript) form post works too, with the token in the body.
    let plain = api
        .client
        .post(api.url("/e/customer"))
        .form(&[
            ("_csrf", api.csrf.as_str()),
            ("name", "Plain Form Ltd"),
            ("status", "Lead"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(plain.status(), StatusCode::SEE_OTHER);
    let no_token = api
        .client
        .post(api.url("/e/customer"))
        .form(&[("name", "No Token"), ("status", "Lead")])
        .send()
        .await
        .expect("POST");
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    assert_eq!(api.json("/api/v1/customer?q=token").await["total"], 0);
}

#[tokio::test]
async fn a_change_reaches_another_users_open_page_over_sse() {
    let s = boot(0).await;
    let ada = s.admin().await;
    let c = ada.customer("Live Ltd").await;
    let id = c["id"].as_u64().expect("id");
    let bob_pw = s.add_user("bob", "Sales").await;
    let bob = s.api("bob", &bob_pw).await;
    let mut stream = bob.get("/events").await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let patch = ada
        .patch(
            &format!("/api/v1/customer/{id}"),
            &json!({ "version": 1, "city": "Zug" }),
        )
        .await;
    assert_eq!(patch.status(), StatusCode::OK);
    let event = tokio::time::timeout(Duration::from_secs(5), next_event(&mut stream, "change"))
        .await
        .expect("an event within 5 s");
    assert!(
        event.contains(&format!("\"id\":{id}"))
            && event.contains("\"op\":\"update\"")
            && event.contains("\"version\":2"),
        "{event}"
    );
    let seq: u64 = event
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("event id");
    // A browser that reconnects gets what it missed from the durable change log.
    let c2 = ada.customer("Missed While Offline").await;
    let mut again = bob
        .client
        .get(bob.url("/events"))
        .header("last-event-id", (seq).to_string())
        .send()
        .await
        .expect("GET");
    let replayed = tokio::time::timeout(Duration::from_secs(5), next_event(&mut again, "change"))
        .await
        .expect("replay");
    assert!(
        replayed.contains(&format!("\"id\":{}", c2["id"]))
            && replayed.contains("\"op\":\"create\""),
        "{replayed}"
    );
    // Another company's changes never reach bob: after c2's event, the next one he
    // sees is ours again, not the rival's record created in between.
    let seen_c2 = tokio::time::timeout(Duration::from_secs(5), next_event(&mut stream, "change"))
        .await
        .expect("c2");
    assert!(
        seen_c2.contains(&format!("\"id\":{}", c2["id"])),
        "{seen_c2}"
    );
    let k = &s.running.kernel;
    let other = k.create_company("Elsewhere", "EUR").await.expect("company");
    let theirs = k
        .create(
            &nexus_kernel::Principal::system(other),
            &nexus_crm::CUSTOMER,
            nexus_kernel::Input::Form(vec![
                ("name".into(), "Not For Bob".into()),
                ("status".into(), "Lead".into()),
            ]),
        )
        .await
        .expect("their customer");
    let ours = ada.customer("After Elsewhere").await;
    let next = tokio::time::timeout(Duration::from_secs(5), next_event(&mut stream, "change"))
        .await
        .expect("ours");
    assert!(next.contains(&format!("\"id\":{}", ours["id"])), "{next}");
    assert!(!next.contains(&format!("\"id\":{}", theirs.id)));
}

#[tokio::test]
async fn https_headers_redirect_health_and_metrics() {
    let s = boot(0).await;
    let api = s.admin().await;
    let res = api.get("/").await;
    let h = res.headers();
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
    assert!(
        h["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    let plain = client_trusting(&s.ca_pem);
    let redirect = plain
        .get(format!(
            "http://localhost:{}/e/customer?x=1",
            s.running.http.port()
        ))
        .send()
        .await
        .expect("GET");
    assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        redirect.headers()["location"],
        format!(
            "https://localhost:{}/e/customer?x=1",
            s.running.https.port()
        )
    );
    // Found by a hostile test: the redirect echoed any Host; now only the box's names.
    let spoofed = plain
        .get(format!("http://127.0.0.1:{}/login", s.running.http.port()))
        .header("host", "evil.example")
        .send()
        .await
        .expect("GET");
    assert_eq!(spoofed.status(), StatusCode::BAD_REQUEST);
    assert!(spoofed.headers().get("location").is_none());
    assert_eq!(
        api.get("/healthz").await.text().await.expect("body"),
        "ok\n"
    );
    let metrics = api.get("/metrics").await.text().await.expect("body");
    assert!(
        metrics.contains("nexus_store_commits_total")
            && metrics.contains("nexus_http_responses_total{class=\"2xx\"}")
    );
    // The event-log followers: each one's position, lag, state and retries.
    for series in [
        "nexus_tailer_position{tailer=\"live\"}",
        "nexus_tailer_lag{tailer=\"live\"}",
        "nexus_tailer_up{tailer=\"live\"} 1",
        "nexus_tailer_retries_total{tailer=\"live\"} 0",
        "nexus_store_writer_up 1",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    let admin = api.get("/admin").await.text().await.expect("admin page");
    assert!(
        admin.contains("Event-log followers") && admin.contains("<td>live</td>"),
        "{admin}"
    );
    let js = api.get(nexus_ui_asset()).await;
    assert_eq!(js.status(), StatusCode::OK);
    assert!(
        js.headers()["cache-control"]
            .to_str()
            .expect("cc")
            .contains("immutable")
    );
}

fn nexus_ui_asset() -> &'static str {
    "/assets/htmx-2.0.11.min.js"
}

#[tokio::test]
async fn csv_export_quotes_and_defuses_formulas() {
    let s = boot(0).await;
    let api = s.admin().await;
    api.post(
        "/api/v1/customer",
        &json!({ "name": "=HYPERLINK(\"x\")", "status": "Lead", "city": "Bern, BE" }),
    )
    .await;
    let csv = api.get("/e/customer/export.csv").await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let body = csv.text().await.expect("csv");
    assert!(body.starts_with("id,name,email,phone,city,country,status,credit_limit,customer_since,tax_id,notes,owner,version\r\n"));
    assert!(body.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{body}");
    assert!(body.contains("\"Bern, BE\""));
}

#[tokio::test]
async fn an_administrator_installs_their_own_certificate() {
    let s = boot(0).await;
    let api = s.admin().await;
    let bad = api
        .htmx_form("/admin/tls", &[("cert", "not a pem"), ("key", "nor this")])
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text()
            .await
            .expect("html")
            .contains("no certificate found")
    );

    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec![
        "localhost".to_string(),
        "erp.example.test".to_string(),
    ])
    .expect("params");
    let cert = params.self_signed(&key).expect("cert");
    let other_key = rcgen::KeyPair::generate().expect("key");
    let mismatch = api
        .htmx_form(
            "/admin/tls",
            &[("cert", &cert.pem()), ("key", &other_key.serialize_pem())],
        )
        .await;
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        mismatch
            .text()
            .await
            .expect("html")
            .contains("does not fit")
    );

    let ok = api
        .htmx_form(
            "/admin/tls",
            &[("cert", &cert.pem()), ("key", &key.serialize_pem())],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().await.expect("html").contains("erp.example.test"));
    // New connections get the new certificate: a client that trusts only it can connect.
    let fresh = client_trusting(&cert.pem());
    let res = fresh
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .expect("TLS with the new certificate");
    assert_eq!(res.status(), StatusCode::OK);
    let key_mode = std::fs::metadata(s.dir.path().join("data/tls/custom.key")).map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o777
    });
    assert_eq!(key_mode.ok(), Some(0o600));
}

/// Found by a hostile test: a `next` with a tab or a line break, raw or encoded.
#[tokio::test]
async fn sign_in_never_sends_a_browser_off_the_box() {
    let s = boot(0).await;
    let client = s.client();
    for next in [
        "/%09/evil.example/a",
        "/\t/evil.example/a",
        "/%0d%0aSet-Cookie:x=1",
        "/a\r\nSet-Cookie: x=1",
        "//evil.example",
        "/%2F/evil.example",
        "/\\evil.example",
        "https://evil.example/",
    ] {
        let login = client
            .get(format!("{}/login", s.base))
            .send()
            .await
            .expect("GET");
        let html = login.text().await.expect("html");
        let csrf = hidden(&html, "_csrf").expect("csrf");
        let res = client
            .post(format!("{}/login", s.base))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("username", ADMIN.0),
                ("password", ADMIN.1),
                ("next", next),
            ])
            .send()
            .await
            .expect("POST");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(res.headers()["location"], "/", "{next:?} must land on /");
    }
}

/// Found by a hostile test: the JSON sign-in has the form's per-address lockout.
#[tokio::test]
async fn the_json_sign_in_locks_an_address_out_like_the_form() {
    let s = boot(0).await;
    let client = s.client();
    let attempt = |username: String, password: &'static str| {
        let client = client.clone();
        let url = format!("{}/api/v1/session", s.base);
        async move {
            client
                .post(url)
                .json(&serde_json::json!({ "username": username, "password": password }))
                .send()
                .await
                .expect("POST")
                .status()
        }
    };
    // Twenty wrong guesses, each at another name, so no name is locked on its own.
    for i in 0..20 {
        assert_eq!(
            attempt(format!("guess{i}"), "wrong wrong wrong").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attempt(ADMIN.0.into(), ADMIN.1).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is locked, even for the right password"
    );
}

/// Found by a hostile test: a live-updates stream opened before sign-out delivered
/// events afterwards. It now ends at the first event after the session is gone.
#[tokio::test]
async fn a_live_stream_ends_when_its_session_does() {
    let s = boot(0).await;
    let ada = s.admin().await;
    let c = ada.customer("Watched Ltd").await;
    let id = c["id"].as_u64().expect("id");
    let bob_pw = s.add_user("bob", "Sales").await;
    let bob = s.api("bob", &bob_pw).await;
    let mut stream = bob.get("/events").await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let res = bob.delete("/api/v1/session").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let patch = ada
        .patch(
            &format!("/api/v1/customer/{id}"),
            &json!({ "version": 1, "city": "Secret City" }),
        )
        .await;
    assert_eq!(patch.status(), StatusCode::OK);
    // The stream closes instead of carrying the change.
    let rest = tokio::time::timeout(Duration::from_secs(10), next_event(&mut stream, "change"))
        .await
        .expect("the stream ends within 10 s");
    assert!(
        !rest.contains("\"op\":\"update\""),
        "an event after sign-out: {rest}"
    );
}

/// Found by a hostile test: the form's 429 said nothing of when to try again.
#[tokio::test]
async fn a_locked_out_form_says_when_to_try_again() {
    let s = boot(0).await;
    let client = s.client();
    let mut last = None;
    for _ in 0..6 {
        let login = client
            .get(format!("{}/login", s.base))
            .send()
            .await
            .expect("GET");
        let html = login.text().await.expect("html");
        let csrf = hidden(&html, "_csrf").expect("csrf");
        let res = client
            .post(format!("{}/login", s.base))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("username", ADMIN.0),
                ("password", "not the password"),
            ])
            .send()
            .await
            .expect("POST");
        last = Some(res);
    }
    let res = last.expect("six attempts");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=900).contains(&secs), "{secs}");
}
