//! Several companies on one box, over real HTTPS: an administrator creates a second
//! company through the API, gives a user of the first access to it, both switch —
//! and every route answers for the company the session works in, never the other.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ADMIN, Api, TestServer, api_error, boot, next_event};

async fn created(res: reqwest::Response, what: &str) -> Value {
    assert_eq!(res.status(), StatusCode::CREATED, "{what}");
    res.json().await.expect("json")
}

async fn switch(api: &Api, company: u64) -> Value {
    let res = api
        .post("/api/v1/session/company", &json!({ "company": company }))
        .await;
    assert_eq!(res.status(), StatusCode::OK, "switch to {company}");
    res.json().await.expect("json")
}

/// Two real companies: Acme (the default, with `admin`) and Beta (made through the
/// API by `admin`, who administers it as a member), each with a customer of its own,
/// and `bea`, Beta's own administrator.
struct Two {
    s: TestServer,
    admin: Api,
    acme: u64,
    beta: u64,
    acme_customer: u64,
    beta_customer: u64,
    bea: Api,
}

async fn two_companies() -> Two {
    let s = boot(0).await;
    let admin = s.admin().await;
    let acme = s.company();
    let acme_customer = admin.customer("Acme Secret Client").await["id"]
        .as_u64()
        .expect("id");
    // Making a company is a change of access: it asks for the maker's password.
    let res = admin
        .post(
            "/api/v1/company",
            &json!({ "name": "Beta GmbH", "currency": "EUR" }),
        )
        .await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(
        body["error"]["fields"]["current_password"]
            .as_str()
            .is_some_and(|m| m.contains("Creating a company")),
        "{body}"
    );
    let beta = created(
        admin
            .post(
                "/api/v1/company",
                &json!({ "name": "Beta GmbH", "currency": "EUR", "current_password": ADMIN.1 }),
            )
            .await,
        "Beta",
    )
    .await["id"]
        .as_u64()
        .expect("id");
    let me = admin.json("/api/v1/me").await;
    assert_eq!(
        me["company"]["id"], acme,
        "creating does not move the API session"
    );
    assert_eq!(me["companies"].as_array().map(Vec::len), Some(2), "{me}");
    let me = switch(&admin, beta).await;
    assert_eq!(me["company"]["name"], "Beta GmbH");
    assert_eq!(me["home_company"], acme);
    assert_eq!(me["role"], "Administrator");
    let beta_customer = admin.customer("Beta Secret Client").await["id"]
        .as_u64()
        .expect("id");
    let roles = admin.json("/api/v1/role?f.name=Administrator").await;
    let beta_admin = roles["data"][0]["id"].as_u64().expect("role");
    created(
        admin
            .post(
                "/api/v1/user",
                &json!({
                    "username": "bea", "full_name": "Bea Beta", "role": beta_admin,
                    "active": true, "password": "bea's own password 1",
                    "current_password": ADMIN.1,
                }),
            )
            .await,
        "bea",
    )
    .await;
    switch(&admin, acme).await;
    let bea = s.api("bea", "bea's own password 1").await;
    Two {
        s,
        admin,
        acme,
        beta,
        acme_customer,
        beta_customer,
        bea,
    }
}

/// Every way to reach a customer of another company answers as if it did not exist.
async fn cannot_reach(api: &Api, theirs: u64, name: &str) {
    for path in [
        format!("/api/v1/customer/{theirs}"),
        format!("/api/v1/customer/{theirs}/history"),
    ] {
        api_error(api.get(&path).await, StatusCode::NOT_FOUND, "not_found").await;
    }
    for page in [
        format!("/e/customer/{theirs}"),
        format!("/e/customer/{theirs}/history"),
    ] {
        assert_eq!(
            api.get(&page).await.status(),
            StatusCode::NOT_FOUND,
            "{page}"
        );
    }
    // A write is refused as "not found" — or, for someone who may not write here at
    // all, as forbidden before the id is looked at: either way it tells nothing.
    let res = api
        .patch(
            &format!("/api/v1/customer/{theirs}"),
            &json!({ "version": 1, "name": "Stolen" }),
        )
        .await;
    assert!(
        [StatusCode::NOT_FOUND, StatusCode::FORBIDDEN].contains(&res.status()),
        "PATCH: {}",
        res.status()
    );
    let res = api.delete(&format!("/api/v1/customer/{theirs}")).await;
    assert!(
        [StatusCode::NOT_FOUND, StatusCode::FORBIDDEN].contains(&res.status()),
        "DELETE: {}",
        res.status()
    );
    let res = api
        .post(
            "/api/v1/contact",
            &json!({ "name": "Spy", "customer": theirs }),
        )
        .await;
    assert!(
        [StatusCode::UNPROCESSABLE_ENTITY, StatusCode::FORBIDDEN].contains(&res.status()),
        "a contact of their customer: {}",
        res.status()
    );
    // Lists, exports, search and the assistant's tools hold none of it.
    let list = api.json("/api/v1/customer?limit=500").await;
    assert!(!list.to_string().contains(name), "list: {list}");
    let csv = api.get("/e/customer/export.csv").await;
    match csv.status() {
        StatusCode::OK => assert!(!csv.text().await.expect("csv").contains(name)),
        status => assert_eq!(status, StatusCode::FORBIDDEN, "export"),
    }
    let found = api
        .get(&format!("/search?q={}", name.replace(' ', "+")))
        .await;
    assert_eq!(found.status(), StatusCode::OK);
    let html = found.text().await.expect("html");
    assert!(
        !html.contains(&format!("/e/customer/{theirs}\"")),
        "search: {html}"
    );
    // The word only the other company's records have finds nothing, not even a count
    // (the whole name may find the reader's own records with some of its words).
    let own_word = name.split(' ').next().unwrap_or(name);
    let found = api.get(&format!("/search?q={own_word}")).await;
    assert_eq!(found.status(), StatusCode::OK);
    let html = found.text().await.expect("html");
    assert!(html.contains("Nothing found for"), "search: {html}");
    let tool = api
        .post(
            "/api/v1/tools/crm.find_customers",
            &json!({ "query": name, "limit": 50 }),
        )
        .await;
    assert_eq!(tool.status(), StatusCode::OK);
    assert!(!tool.text().await.expect("json").contains(name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_real_companies_never_see_each_other() {
    let t = two_companies().await;
    // Bea, at home in Beta, cannot reach Acme's customer; admin in Acme cannot reach
    // Beta's; and the other way round once admin works in Beta.
    cannot_reach(&t.bea, t.acme_customer, "Acme Secret Client").await;
    cannot_reach(&t.admin, t.beta_customer, "Beta Secret Client").await;
    switch(&t.admin, t.beta).await;
    cannot_reach(&t.admin, t.acme_customer, "Acme Secret Client").await;
    let own = t
        .admin
        .json(&format!("/api/v1/customer/{}", t.beta_customer))
        .await;
    assert_eq!(own["name"], "Beta Secret Client");
    // Bea may not switch to Acme, nor to anything that is not a company of hers.
    for company in [t.acme, t.acme_customer, 999_999] {
        let res = t
            .bea
            .post("/api/v1/session/company", &json!({ "company": company }))
            .await;
        api_error(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    let res = t
        .bea
        .post("/api/v1/session/company", &json!({ "company": "1" }))
        .await;
    api_error(res, StatusCode::BAD_REQUEST, "malformed").await;
    assert_eq!(t.bea.json("/api/v1/me").await["company"]["id"], t.beta);
    // Beta's administrator cannot reach Acme's users or roles by id either.
    let admin_id = t.admin.json("/api/v1/me").await["id"].as_u64().expect("id");
    let res = t
        .bea
        .patch(
            &format!("/api/v1/user/{admin_id}"),
            &json!({ "version": 1, "password": "bea owns admin now 1",
                     "current_password": "bea's own password 1" }),
        )
        .await;
    api_error(res, StatusCode::NOT_FOUND, "not_found").await;
    // Nothing was changed by any of it.
    let kept = t
        .admin
        .json(&format!("/api/v1/customer/{}", t.beta_customer))
        .await;
    assert_eq!(
        (kept["name"].as_str(), kept["version"].as_u64()),
        (Some("Beta Secret Client"), Some(1))
    );
    switch(&t.admin, t.acme).await;
    let kept = t
        .admin
        .json(&format!("/api/v1/customer/{}", t.acme_customer))
        .await;
    assert_eq!(
        (kept["name"].as_str(), kept["version"].as_u64()),
        (Some("Acme Secret Client"), Some(1))
    );
    t.s.running.kernel.verify_audit().expect("chain verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_works_in_another_company_with_that_companys_role() {
    let t = two_companies().await;
    let clerk_pw = t.s.add_user("clerk", "Sales").await;
    let clerk = t.s.api("clerk", &clerk_pw).await;
    assert_eq!(
        clerk.json("/api/v1/me").await["companies"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let res = clerk
        .post("/api/v1/session/company", &json!({ "company": t.beta }))
        .await;
    api_error(res, StatusCode::NOT_FOUND, "not_found").await;
    // Bea administers Beta but not Acme, where the clerk belongs: she may not link
    // them (whoever may change the clerk's record at home would then need Beta's
    // rights too). Admin, who administers both, gives the clerk Beta's Viewer role.
    let viewer = t.bea.json("/api/v1/role?f.name=Viewer").await["data"][0]["id"]
        .as_u64()
        .expect("viewer");
    let res = t
        .bea
        .post(
            "/api/v1/membership",
            &json!({ "username": "clerk", "role": viewer,
                     "current_password": "bea's own password 1" }),
        )
        .await;
    let body = api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(
        body["error"]["fields"]["username"]
            .as_str()
            .is_some_and(|m| m.contains("needs the right to manage them in their own company")),
        "{body}"
    );
    switch(&t.admin, t.beta).await;
    let res = t
        .admin
        .post(
            "/api/v1/membership",
            &json!({ "username": "clerk", "role": viewer }),
        )
        .await;
    api_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let membership = created(
        t.admin
            .post(
                "/api/v1/membership",
                &json!({ "username": "clerk", "role": viewer, "current_password": ADMIN.1 }),
            )
            .await,
        "membership",
    )
    .await;
    assert_eq!(membership["home"], "Test Company");
    // The clerk switches: Beta's customer is readable, not writable; Acme's is gone.
    let me = switch(&clerk, t.beta).await;
    assert_eq!(
        (me["role"].as_str(), me["home_company"].as_u64()),
        (Some("Viewer"), Some(t.acme))
    );
    let theirs = clerk
        .json(&format!("/api/v1/customer/{}", t.beta_customer))
        .await;
    assert_eq!(theirs["name"], "Beta Secret Client");
    let res = clerk
        .patch(
            &format!("/api/v1/customer/{}", t.beta_customer),
            &json!({ "version": 1, "name": "Changed by a viewer" }),
        )
        .await;
    api_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    cannot_reach(&clerk, t.acme_customer, "Acme Secret Client").await;
    // A live stream opened in Beta ends when the session moves to Acme.
    let mut stream = clerk.get("/events").await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    switch(&clerk, t.acme).await;
    switch(&t.admin, t.beta).await;
    t.admin.customer("Beta After The Switch").await;
    let rest = tokio::time::timeout(Duration::from_secs(10), next_event(&mut stream, "change"))
        .await
        .expect("the stream ends within 10 s");
    assert!(!rest.contains("Beta After The Switch"), "{rest}");
    // Removing the membership sends the clerk home; Beta is no longer theirs.
    switch(&clerk, t.beta).await;
    let id = membership["id"].as_u64().expect("id");
    let res = t.bea.delete(&format!("/api/v1/membership/{id}")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let me = clerk.json("/api/v1/me").await;
    assert_eq!(me["company"]["id"], t.acme, "{me}");
    assert_eq!(me["companies"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_company_from_the_form_is_worked_in_at_once() {
    let t = two_companies().await;
    let form = t.admin.get("/e/company/new").await;
    assert_eq!(form.status(), StatusCode::OK);
    let html = form.text().await.expect("html");
    assert!(
        html.contains("name=\"current_password\""),
        "asks for the password"
    );
    let res = t
        .admin
        .htmx_form(
            "/e/company",
            &[
                ("name", "Gamma Holding"),
                ("currency", "CHF"),
                ("current_password", ADMIN.1),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let to = res.headers()["hx-redirect"]
        .to_str()
        .expect("redirect")
        .to_string();
    let page = t.admin.get(&to).await;
    assert_eq!(page.status(), StatusCode::OK, "{to}");
    let html = page.text().await.expect("html");
    assert!(html.contains("Gamma Holding"));
    // The top bar now offers all three companies.
    assert!(html.contains("id=\"company-switch\""), "switcher");
    for name in ["Test Company", "Beta GmbH", "Gamma Holding"] {
        assert!(html.contains(&format!(">{name}</option>")), "{name}");
    }
    // And switching back through the form works like the API.
    let acme = t.acme.to_string();
    let res = t
        .admin
        .htmx_form("/session/company", &[("company", acme.as_str())])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(t.admin.json("/api/v1/me").await["company"]["id"], t.acme);
    // Someone without every permission may not make a company.
    let sales_pw = t.s.add_user("sam", "Sales").await;
    let sam = t.s.api("sam", &sales_pw).await;
    let res = sam
        .post(
            "/api/v1/company",
            &json!({ "name": "Sam's Own", "currency": "EUR", "current_password": sales_pw }),
        )
        .await;
    api_error(res, StatusCode::FORBIDDEN, "forbidden").await;
}

/// IT's path, with the appliance stopped: `nexus admin create-company`, `companies`,
/// and `create-user --company`.
#[test]
fn it_creates_a_company_and_its_first_user_from_the_command_line() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let run = |args: &[&str], stdin: &str| {
        let mut child = crate::crash::nexus(&data)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nexus");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("stdin");
        let out = child.wait_with_output().expect("wait");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, out, err) = run(
        &[
            "admin",
            "create-company",
            "--name",
            "Delta AG",
            "--currency",
            "CHF",
        ],
        "",
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("created company Delta AG"), "{out}");
    let (ok, out, _) = run(&["admin", "companies"], "");
    assert!(ok);
    let names: Vec<&str> = out.lines().filter_map(|l| l.split('\t').nth(1)).collect();
    assert_eq!(names.len(), 2, "{out}");
    assert!(names.contains(&"Delta AG"), "{out}");
    let (ok, out, err) = run(
        &[
            "admin",
            "create-user",
            "--username",
            "dora",
            "--full-name",
            "Dora Delta",
            "--company",
            "delta ag",
        ],
        "dora's long password\n",
    );
    assert!(ok, "{out}{err}");
    let (ok, _, err) = run(
        &[
            "admin",
            "create-user",
            "--username",
            "nobody",
            "--full-name",
            "No Body",
            "--company",
            "Epsilon",
        ],
        "a long enough password\n",
    );
    assert!(!ok);
    assert!(err.contains("there is no company \"Epsilon\""), "{err}");
    let (ok, _, err) = run(
        &["admin", "create-company", "--name", "", "--currency", "XYZ"],
        "",
    );
    assert!(!ok);
    assert!(err.contains("name") && err.contains("currency"), "{err}");
}

/// Found by a hostile test of the change: the certificate, the schedules, the metrics
/// and the transparency log are the box's, so a company's administrator who does not
/// administer the box's first company reaches none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_wide_settings_are_for_the_boxs_administrators() {
    let t = two_companies().await;
    for path in [
        "/admin",
        "/metrics",
        "/api/v1/audit/checkpoint",
        "/api/v1/audit/key",
    ] {
        let status = t.bea.get(path).await.status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let res = t
        .bea
        .htmx_form(
            "/admin/schedules/ledger.verify_totals",
            &[("every_secs", "86400")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "schedules");
    let res = t
        .bea
        .htmx_form("/admin/tls", &[("cert", "x"), ("key", "y")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "certificate");
    let res = t
        .bea
        .post(
            "/api/v1/company",
            &json!({ "name": "Bea's Own", "currency": "EUR",
                     "current_password": "bea's own password 1" }),
        )
        .await;
    api_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    // The box's administrator keeps them while working in Beta.
    switch(&t.admin, t.beta).await;
    assert_eq!(t.admin.get("/admin").await.status(), StatusCode::OK);
    assert_eq!(
        t.admin.get("/api/v1/audit/key").await.status(),
        StatusCode::OK
    );
    // A company switch is never answered from an idempotency key's memory.
    let switch_with_key = |company: u64| {
        t.admin
            .client
            .post(t.admin.url("/api/v1/session/company"))
            .header("x-csrf-token", &t.admin.csrf)
            .header("idempotency-key", "switch-1")
            .json(&json!({ "company": company }))
            .send()
    };
    let first = switch_with_key(t.acme).await.expect("switch");
    assert_eq!(first.status(), StatusCode::OK);
    switch(&t.admin, t.beta).await;
    let again = switch_with_key(t.acme).await.expect("switch");
    assert!(again.headers().get("idempotent-replayed").is_none());
    assert_eq!(t.admin.json("/api/v1/me").await["company"]["id"], t.acme);

    // Administering the box through Acme's role needs what that role needs: once it
    // requires a second factor, a session working in Beta without one is no longer
    // the box's administrator.
    let in_beta = t.s.admin().await;
    switch(&in_beta, t.beta).await;
    let roles = t.admin.json("/api/v1/role?f.name=Administrator").await;
    let role = &roles["data"][0];
    let res = t
        .admin
        .patch(
            &format!("/api/v1/role/{}", role["id"]),
            &json!({ "version": role["version"], "require_mfa": true, "current_password": ADMIN.1 }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    for path in ["/admin", "/api/v1/audit/key"] {
        let status = in_beta.get(path).await.status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        in_beta.json("/api/v1/me").await["company"]["id"],
        t.beta,
        "still Beta's administrator"
    );
}
