//! Search over real HTTPS: a saved record is found through the full-text index that
//! its tailer keeps; the API, the search page and the top bar's suggestions give the
//! same hits; permissions (company, role, record rule) hold inside the query; bad
//! queries get clear errors; the index survives a restart and is rebuilt when damaged.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Api, api_error, boot, boot_with_vectors, restart, restart_with_vectors};

/// Asks until the search answers `want` hits (the indexer follows the log on its
/// own); gives up after ten seconds with the last answer.
pub(crate) async fn search_until(api: &Api, q: &str, want: u64) -> Value {
    let path = format!("/api/v1/search?q={}", q.replace(' ', "+"));
    let mut last = Value::Null;
    for _ in 0..200 {
        let res = api.get(&path).await;
        let status = res.status();
        last = res.json().await.expect("json");
        assert_eq!(status, StatusCode::OK, "GET {path}: {last}");
        if last["total"] == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("search {q:?} never answered {want} hits: {last}");
}

fn titles(answer: &Value) -> Vec<String> {
    let mut t: Vec<String> = answer["hits"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(|x| x["title"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_records_are_found_within_the_readers_permissions() {
    let s = boot(0).await;
    let admin = s.admin().await;
    let zurich = admin.customer("Zürcher Uhrenhaus").await;
    let answer = search_until(&admin, "zurcher", 1).await;
    let hit = &answer["hits"][0];
    assert_eq!(hit["entity"], "customer");
    assert_eq!(hit["id"], zurich["id"]);
    assert_eq!(hit["url"], format!("/e/customer/{}", zurich["id"]));
    assert_eq!(hit["title_fragments"][0]["hit"], true, "{hit}");
    assert_eq!(answer["by_entity"][0]["entity"], "customer");
    // The indexer is a tailer like the others: its lag is in /metrics (and on the
    // admin page, from the same list).
    let metrics = admin.text("/metrics").await;
    assert!(
        metrics.contains("nexus_tailer_lag{tailer=\"search\"}")
            && metrics.contains("nexus_tailer_up{tailer=\"search\"} 1"),
        "{metrics}"
    );
    // As typed (a prefix) and with a typo.
    search_until(&admin, "zurch", 1).await;
    search_until(&admin, "uhrenhuas", 1).await;

    // A sales rep sees their own customers only; the counts too.
    let rep_pw = s.add_user("rex", "Sales rep").await;
    let rep = s.api("rex", &rep_pw).await;
    assert_eq!(search_until(&rep, "zurcher", 0).await["total"], 0);
    let res = rep
        .post(
            "/api/v1/customer",
            &serde_json::json!({ "name": "Zürcher Bank", "status": "Lead" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let own = search_until(&rep, "zurcher", 1).await;
    assert_eq!(titles(&own), ["Zürcher Bank"]);
    assert_eq!(own["by_entity"][0]["count"], 1);
    assert_eq!(
        titles(&search_until(&admin, "zurcher", 2).await),
        ["Zürcher Bank", "Zürcher Uhrenhaus"]
    );

    // Another company's administrator finds nothing of this one.
    let k = &s.running.kernel;
    let other = k.create_company("Other AG", "EUR").await.expect("company");
    let role = k.role_by_name(other, "Administrator").expect("role");
    k.create_user(other, "olga", "Olga", "olga password 123", role)
        .await
        .expect("user");
    let olga = s.api("olga", "olga password 123").await;
    assert_eq!(
        search_until(&olga, "zurcher", 0).await["hits"],
        serde_json::json!([])
    );

    // An update is found by its new name only; a delete is gone.
    let id = zurich["id"].as_u64().expect("id");
    let res = admin
        .patch(
            &format!("/api/v1/customer/{id}"),
            &serde_json::json!({ "name": "Basler Uhrenhaus", "version": zurich["version"] }),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap_or_default()
    );
    search_until(&admin, "basler", 1).await;
    let both = search_until(&admin, "uhrenhaus basler", 1).await;
    assert_eq!(titles(&both), ["Basler Uhrenhaus"]);
    assert_eq!(both["some_words"], false, "{both}");
    assert_eq!(search_until(&admin, "zurcher", 1).await["total"], 1);

    // Filters: an entity that exists, one that does not, dates.
    let only_contacts = admin
        .json("/api/v1/search?q=uhrenhaus&entity=contact")
        .await;
    assert_eq!(only_contacts["total"], 0);
    let e = api_error(
        admin.get("/api/v1/search?q=x&entity=nothing").await,
        StatusCode::BAD_REQUEST,
        "malformed",
    )
    .await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing")
    );
    api_error(
        admin.get("/api/v1/search?q=x&from=2026-02-30").await,
        StatusCode::BAD_REQUEST,
        "malformed",
    )
    .await;
    api_error(
        admin.get("/api/v1/search?q=x&limit=1000").await,
        StatusCode::BAD_REQUEST,
        "malformed",
    )
    .await;
    // A 10 kB query is refused with its reason; operators are words, not syntax.
    let long = format!("/api/v1/search?q={}", "a".repeat(10_000));
    let e = api_error(admin.get(&long).await, StatusCode::BAD_REQUEST, "malformed").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("500 characters"),
        "{e}"
    );
    for q in [
        "%22basler",
        "basler+AND+OR+NOT",
        "basler%29%28*",
        "%E2%80%AE%00",
    ] {
        let res = admin.get(&format!("/api/v1/search?q={q}")).await;
        assert_eq!(res.status(), StatusCode::OK, "{q}");
    }
    // Signed out, nothing.
    let res = s
        .client()
        .get(format!("{}/api/v1/search?q=basler", s.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_page_and_the_top_bar_show_the_same_hits_and_jump_to_pages() {
    let s = boot(0).await;
    let admin = s.admin().await;
    admin.customer("Helvetia Handels AG").await;
    search_until(&admin, "helvetia", 1).await;

    let home = admin.text("/").await;
    assert!(
        home.contains(r#"hx-get="/search/suggest""#) && home.contains(r#"id="search-suggest""#),
        "the top bar asks as you type: {}",
        &home[..home.len().min(3000)]
    );
    let html = admin.text("/search?q=helvet").await;
    assert!(html.contains("<mark>Helvetia</mark> Handels AG"), "{html}");
    assert!(html.contains("Customers (1)"), "the count as a filter");

    let html = admin.text("/search/suggest?q=helvet").await;
    assert!(html.contains("<mark>Helvetia</mark>"), "{html}");
    assert!(html.contains("All results for"), "{html}");

    // The palette: pages and actions by their words.
    let html = admin.text("/search/suggest?q=trial").await;
    assert!(html.contains("Trial balance"), "{html}");
    let html = admin.text("/search/suggest?q=new+cust").await;
    assert!(html.contains("href=\"/e/customer/new\""), "{html}");
    // A viewer is offered no action they may not take.
    let pw = s.add_user("vera", "Compliance officer").await;
    let viewer = s.api("vera", &pw).await;
    let html = viewer.text("/search/suggest?q=new+cust").await;
    assert!(!html.contains("/e/customer/new"), "{html}");
    assert!(!html.contains("Helvetia"), "{html}");
    // A bad search is a message on the page, not an error page.
    let long = format!("/search?q={}", "b".repeat(600));
    assert!(admin.text(&long).await.contains("at most 500 characters"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_survives_a_restart_and_a_damaged_one_is_rebuilt() {
    let s = boot(0).await;
    let admin = s.admin().await;
    admin.customer("Rhein Logistik").await;
    search_until(&admin, "rhein", 1).await;
    drop(admin);
    let dir = s.dir;
    let index_dir = dir.path().join("data/search");
    s.running.shutdown().await;

    // Restarted: the index is where it was.
    let s = restart(dir).await;
    let admin = s.admin().await;
    search_until(&admin, "rhein", 1).await;
    drop(admin);
    let dir = s.dir;
    s.running.shutdown().await;

    // Damaged while stopped: set aside, rebuilt from the store at start.
    std::fs::write(index_dir.join("meta.json"), b"garbage").expect("damage");
    let s = restart(dir).await;
    let admin = s.admin().await;
    search_until(&admin, "rhein", 1).await;
    assert!(index_dir.with_extension("damaged").exists());
    drop(admin);
    let dir = s.dir;
    s.running.shutdown().await;

    // Gone while stopped: `nexus reindex` builds it again from the records.
    std::fs::remove_dir_all(&index_dir).expect("remove the index");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nexus"))
        .env("NEXUS_DATA_DIR", dir.path().join("data"))
        .env("NEXUS_LOG", "warn")
        .arg("reindex")
        .output()
        .expect("run nexus reindex");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("the search index in") && said.contains("document passages), up to event"),
        "{said}"
    );
    assert!(index_dir.join("meta.json").exists());
    let s = restart(dir).await;
    let admin = s.admin().await;
    search_until(&admin, "rhein", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_rebuilds_the_index_as_a_job_while_searches_go_on() {
    let s = boot(3).await;
    let admin = s.admin().await;
    admin.customer("Rheinhafen Logistik").await;
    search_until(&admin, "rheinhafen", 1).await;
    let page = admin.text("/admin").await;
    assert!(
        page.contains("Rebuild the search index"),
        "the admin page offers it"
    );

    // Only the box's administrators may start it.
    let password = s.add_user("sal", "Sales").await;
    let sales = s.api("sal", &password).await;
    let res = sales.htmx_form("/admin/search/rebuild", &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = admin.htmx_form("/admin/search/rebuild", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let target = res.headers()["hx-redirect"]
        .to_str()
        .expect("header")
        .to_owned();
    let id = target.strip_prefix("/jobs/").expect("a job's page");
    let mut job = Value::Null;
    for _ in 0..200 {
        job = admin.json(&format!("/api/v1/jobs/{id}")).await;
        if job["state"] == "done" || job["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job["state"], "done", "{job}");
    let records = job["result"]["records"].as_u64().expect("records");
    assert!(records > 3, "it visited every record: {job}");
    assert_eq!(job["progress"]["done"], records, "{job}");
    assert_eq!(job["progress"]["total"], records, "{job}");
    // The rebuilt index answers as before, and follows new records.
    search_until(&admin, "rheinhafen", 1).await;
    admin.customer("Rheinhafen Zwei").await;
    search_until(&admin, "rheinhafen", 2).await;
}

/// Asks `GET /api/v1/search?q=&mode=` until `done` holds for the answer (the vector
/// indexer follows the log on its own, behind the full-text one); gives up after
/// twenty seconds with the last answer.
async fn search_mode_until(api: &Api, q: &str, mode: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/api/v1/search?q={}&mode={mode}", q.replace(' ', "+"));
    let mut last = Value::Null;
    for _ in 0..400 {
        let res = api.get(&path).await;
        let status = res.status();
        last = res.json().await.expect("json");
        assert_eq!(status, StatusCode::OK, "GET {path}: {last}");
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("search {q:?} ({mode}) never answered as expected: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_found_by_meaning_within_the_readers_permissions() {
    let s = boot_with_vectors(0).await;
    let admin = s.admin().await;
    admin.customer("Alpine Coffee Roasters").await;
    admin.customer("Helvetia Steel Works").await;
    let first = |a: &Value| {
        a["hits"][0]["title"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // No word in common: found by meaning alone.
    let q = "espresso beans supplier";
    let meaning = search_mode_until(&admin, q, "vector", |a| {
        first(a) == "Alpine Coffee Roasters"
    })
    .await;
    assert_eq!(meaning["retrieval"], "vector");
    assert_eq!(meaning["hits"][0]["found_by"], "meaning", "{meaning}");
    assert!(
        meaning["hits"][0]["similarity"]
            .as_f64()
            .is_some_and(|s| s >= 0.3),
        "{meaning}"
    );
    let hybrid = search_mode_until(&admin, q, "hybrid", |a| {
        first(a) == "Alpine Coffee Roasters"
    })
    .await;
    assert_eq!(hybrid["retrieval"], "hybrid");
    let words = admin
        .get(&format!(
            "/api/v1/search?q={}&mode=text",
            q.replace(' ', "+")
        ))
        .await;
    let words: Value = words.json().await.expect("json");
    // By words alone: no record has all three, so those with some ("supplier"), never
    // the roaster.
    assert_eq!(words["some_words"], true, "{words}");
    assert!(
        titles(&words).iter().all(|t| t != "Alpine Coffee Roasters"),
        "{words}"
    );
    assert_eq!(words["retrieval"], "text");
    // The default is hybrid.
    let default: Value = admin
        .get("/api/v1/search?q=espresso+beans+supplier")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(first(&default), "Alpine Coffee Roasters", "{default}");

    // The vector indexer is a tailer like the others.
    let metrics = admin.text("/metrics").await;
    assert!(
        metrics.contains("nexus_tailer_up{tailer=\"vectors\"} 1"),
        "{metrics}"
    );

    // A sales rep finds their own customers only, by meaning too.
    let rep_pw = s.add_user("rex", "Sales rep").await;
    let rep = s.api("rex", &rep_pw).await;
    let res = rep
        .post(
            "/api/v1/customer",
            &serde_json::json!({ "name": "Bean Counter Cafe", "status": "Lead" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let own = search_mode_until(&rep, q, "vector", |a| {
        !a["hits"].as_array().is_none_or(Vec::is_empty)
    })
    .await;
    assert_eq!(titles(&own), ["Bean Counter Cafe"], "{own}");

    // A mode that is not one is refused in words.
    let res = admin.get("/api/v1/search?q=coffee&mode=magic").await;
    let body = api_error(res, StatusCode::BAD_REQUEST, "malformed").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("text, vector or hybrid")),
        "{body}"
    );

    // Stopped: the graph is saved beside the vectors, and read at the next start.
    drop((admin, rep));
    let dir = s.dir;
    s.running.shutdown().await;
    let manifest = dir.path().join("data/vectors/graph/manifest.json");
    let saved = std::fs::read_to_string(&manifest).expect("the graph saved at shutdown");
    assert!(saved.contains("\"rows\":"), "{saved}");
    let s = restart_with_vectors(dir).await;
    let admin = s.admin().await;
    // Both coffee customers found by meaning again (the administrator reads the rep's).
    search_mode_until(&admin, q, "vector", |a| {
        let t = titles(a);
        ["Alpine Coffee Roasters", "Bean Counter Cafe"]
            .iter()
            .all(|want| t.iter().any(|t| t == want))
    })
    .await;
}
