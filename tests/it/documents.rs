//! Documents over real HTTPS: attached to a record through its permissions, streamed
//! into the real blob store, typed from their content, downloaded whole and in ranges,
//! versioned, and their files swept once nothing names them.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Api, api_error, boot};
use crate::search::search_until;

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const PDF_V2: &[u8] = b"%PDF-1.4\n% the second version\n%%EOF\n";
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
];

async fn upload(api: &Api, path: &str, body: &[u8]) -> reqwest::Response {
    api.client
        .post(api.url(path))
        .header("x-csrf-token", &api.csrf)
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
        .expect("upload")
}

async fn download(api: &Api, path: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = api.client.get(api.url(path));
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.expect("download")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_on_a_record_is_read_through_it_versioned_and_swept_when_its_record_goes() {
    let s = boot(0).await;
    let admin = s.admin().await;
    let customer = admin.customer("Initech").await;
    let id = customer["id"].as_u64().expect("id");
    let docs = format!("/api/v1/customer/{id}/documents");

    // Attach: the name loses its path, the type comes from the content.
    let res = upload(&admin, &format!("{docs}?name=..%2F..%2Fcontract.pdf"), PDF).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let doc: Value = res.json().await.expect("json");
    assert_eq!(doc["name"], "contract.pdf");
    assert_eq!(doc["mime"], "application/pdf");
    assert_eq!(doc["size"], PDF.len());
    assert_eq!(doc["revision"], 1);
    assert_eq!(doc["sha256"], nexus_blobs::BlobId::of(PDF).to_hex());
    assert_eq!(doc["updated_by"], "Ada Admin");
    let doc_id = doc["id"].as_u64().expect("doc id");

    // Whole and in ranges.
    let content = format!("/api/v1/documents/{doc_id}/content");
    let res = download(&admin, &content, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .expect("header")
            .starts_with("attachment; filename=\"contract.pdf\""),
        "{:?}",
        res.headers()
    );
    assert_eq!(res.bytes().await.expect("bytes").as_ref(), PDF);
    let res = download(&admin, &content, Some("bytes=0-3")).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 0-3/{}", PDF.len()).as_str()
    );
    assert_eq!(res.bytes().await.expect("bytes").as_ref(), b"%PDF");
    let res = download(&admin, &content, Some("bytes=-6")).await;
    assert_eq!(res.bytes().await.expect("bytes").as_ref(), b"%%EOF\n");
    let res = download(&admin, &content, Some("bytes=100000-")).await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes */{}", PDF.len()).as_str()
    );

    // Bad uploads: a clear refusal each, and the record keeps exactly what it had.
    let res = upload(&admin, &format!("{docs}?name=invoice.pdf"), PNG).await;
    let body = api_error(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "file_refused").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("a PNG image")),
        "{body}"
    );
    let big = vec![b'x'; 2 * 1024 * 1024 + 1];
    let res = upload(&admin, &format!("{docs}?name=big.txt"), &big).await;
    let body = api_error(res, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("2 MiB"))
    );
    api_error(
        upload(&admin, &docs, PDF).await,
        StatusCode::BAD_REQUEST,
        "malformed",
    )
    .await;
    let res = upload(&admin, "/api/v1/customer/999999/documents?name=a.pdf", PDF).await;
    api_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let list = admin.json(&docs).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");

    // A new version, based on the version one saw; a second one on the same base is stale.
    let versions = format!("/api/v1/documents/{doc_id}/versions");
    let res = upload(
        &admin,
        &format!("{versions}?name=contract%20v2.pdf&version=1"),
        PDF_V2,
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v2: Value = res.json().await.expect("json");
    assert_eq!(
        (v2["revision"].as_u64(), v2["name"].as_str()),
        (Some(2), Some("contract v2.pdf"))
    );
    let res = upload(&admin, &format!("{versions}?version=1"), PDF).await;
    api_error(res, StatusCode::CONFLICT, "conflict").await;
    let full = admin.json(&format!("/api/v1/documents/{doc_id}")).await;
    let revisions: Vec<u64> = full["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["revision"].as_u64())
        .collect();
    assert_eq!(revisions, [2, 1]);
    let old = download(
        &admin,
        &format!("/documents/{doc_id}/versions/1/content"),
        None,
    )
    .await;
    assert_eq!(old.bytes().await.expect("bytes").as_ref(), PDF);
    let now = download(&admin, &content, None).await;
    assert_eq!(now.bytes().await.expect("bytes").as_ref(), PDF_V2);

    // A viewer reads the record: sees and downloads, but adds, replaces and removes nothing.
    let password = s.add_user("vie", "Viewer").await;
    let viewer = s.api("vie", &password).await;
    assert_eq!(viewer.json(&docs).await["data"][0]["id"], doc_id);
    let res = download(&viewer, &content, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    for res in [
        upload(&viewer, &format!("{docs}?name=x.pdf"), PDF).await,
        upload(&viewer, &format!("{versions}?name=x.pdf"), PDF).await,
        viewer.delete(&format!("/api/v1/documents/{doc_id}")).await,
    ] {
        api_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // A sales rep reads only the customers they own (a record rule): this one's
    // documents do not exist for them.
    let password = s.add_user("rep", "Sales rep").await;
    let rep = s.api("rep", &password).await;
    for path in [
        format!("/api/v1/documents/{doc_id}"),
        content.clone(),
        docs.clone(),
    ] {
        api_error(rep.get(&path).await, StatusCode::NOT_FOUND, "not_found").await;
    }
    let res = upload(&rep, &format!("{docs}?name=x.pdf"), PDF).await;
    api_error(res, StatusCode::NOT_FOUND, "not_found").await;

    // The record's page lists it and offers the drop zone to whoever may write.
    let page = admin.text(&format!("/e/customer/{id}")).await;
    assert!(
        page.contains("Documents (1)") && page.contains("contract v2.pdf"),
        "{page}"
    );
    assert!(
        page.contains("class=\"dropzone\""),
        "the admin may drop files"
    );
    let page = viewer.text(&format!("/e/customer/{id}")).await;
    assert!(page.contains("contract v2.pdf") && !page.contains("class=\"dropzone\""));
    let page = admin.text(&format!("/documents/{doc_id}")).await;
    assert!(
        page.contains("Versions") && page.contains("contract.pdf"),
        "{page}"
    );
    // An upload from the page answers the panel with the new document in it.
    let panel = upload(
        &admin,
        &format!("/e/customer/{id}/documents?name=notes.txt"),
        b"call back on Monday",
    )
    .await;
    assert_eq!(panel.status(), StatusCode::OK);
    let panel = panel.text().await.expect("panel");
    assert!(
        panel.contains("Documents (2)") && panel.contains("notes.txt"),
        "{panel}"
    );

    // Deleting the customer deletes its documents; the sweep then removes every file no
    // version names: both versions, the notes, and the PNG whose upload was refused.
    let res = admin.delete(&format!("/api/v1/customer/{id}")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = admin.get(&format!("/api/v1/documents/{doc_id}")).await;
    api_error(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(s.running.blobs.list().expect("blobs").len(), 4);
    let swept = nexus_web::documents::sweep(&s.running.kernel, &s.running.blobs).expect("sweep");
    assert_eq!((swept.referenced, swept.removed), (0, 4), "{swept:?}");
    assert!(s.running.blobs.list().expect("blobs").is_empty());
}

/// The files under `dir`, at any depth.
fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .map(|e| {
                if e.path().is_dir() {
                    files_under(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_job_removes_the_files_and_their_text_and_a_bad_version_is_refused() {
    let s = boot(0).await;
    let admin = s.admin().await;
    let id = admin.customer("Initech").await["id"].as_u64().expect("id");
    let res = upload(
        &admin,
        &format!("/api/v1/customer/{id}/documents?name=notes.txt"),
        b"call back",
    )
    .await;
    let doc = res.json::<Value>().await.expect("json")["id"]
        .as_u64()
        .expect("doc");
    let text_dir = s.dir.path().join("data/text");
    assert_eq!(files_under(&text_dir), 1, "its text is kept");
    let res = admin
        .delete(&format!("/api/v1/documents/{doc}?version=abc"))
        .await;
    api_error(res, StatusCode::BAD_REQUEST, "malformed").await;
    let res = admin
        .delete(&format!("/api/v1/documents/{doc}?version=1"))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The daily job, run now: the file and the text extracted from it go.
    let k = &s.running.kernel;
    let who = k
        .login(crate::common::ADMIN.0, crate::common::ADMIN.1, None)
        .await
        .expect("login")
        .1
        .principal;
    let job = k
        .enqueue(
            &who,
            nexus_kernel::JobSpec::new(nexus_web::documents::SWEEP_KIND, "sweep", Value::Null),
        )
        .await
        .expect("enqueue");
    let done = crate::spine::finished_job(&admin, &format!("/api/v1/jobs/{job}")).await;
    assert_eq!(done["result"]["removed"], 1, "{done}");
    assert!(s.running.blobs.list().expect("blobs").is_empty());
    assert_eq!(files_under(&text_dir), 0, "the text went with its file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_file_on_two_records_is_stored_once_and_kept_while_one_names_it() {
    let s = boot(0).await;
    let admin = s.admin().await;
    let a = admin.customer("Alpha").await["id"].as_u64().expect("id");
    let b = admin.customer("Beta").await["id"].as_u64().expect("id");
    for id in [a, b] {
        let res = upload(
            &admin,
            &format!("/api/v1/customer/{id}/documents?name=terms.pdf"),
            PDF,
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    assert_eq!(
        s.running.blobs.list().expect("blobs").len(),
        1,
        "stored once"
    );
    let res = admin.delete(&format!("/api/v1/customer/{a}")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let swept = nexus_web::documents::sweep(&s.running.kernel, &s.running.blobs).expect("sweep");
    assert_eq!((swept.referenced, swept.removed), (1, 0), "{swept:?}");
    let list = admin.json(&format!("/api/v1/customer/{b}/documents")).await;
    let doc = list["data"][0]["id"].as_u64().expect("doc");
    let res = download(&admin, &format!("/api/v1/documents/{doc}/content"), None).await;
    assert_eq!(res.bytes().await.expect("bytes").as_ref(), PDF);
}

/// A PDF of `pages`, each page's text in Helvetica.
fn pdf(pages: &[&str]) -> Vec<u8> {
    use pdf_writer::{Content, Finish as _, Name, Pdf, Rect, Ref, Str};
    let mut pdf = Pdf::new();
    let (catalog, tree, font) = (Ref::new(1), Ref::new(2), Ref::new(3));
    let ids: Vec<(Ref, Ref)> = (0..pages.len() as i32)
        .map(|i| (Ref::new(10 + 2 * i), Ref::new(11 + 2 * i)))
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(ids.iter().map(|(p, _)| *p))
        .count(pages.len() as i32);
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    for ((page_id, content_id), text) in ids.iter().zip(pages) {
        let mut c = Content::new();
        c.begin_text();
        c.set_font(Name(b"F1"), 12.0);
        c.next_line(72.0, 720.0);
        c.show(Str(text.as_bytes()));
        c.end_text();
        pdf.stream(*content_id, &c.finish());
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0))
            .parent(tree)
            .contents(*content_id);
        page.resources().fonts().pair(Name(b"F1"), font);
        page.finish();
    }
    pdf.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_documents_text_is_found_at_its_page_by_those_who_may_read_its_record() {
    let s = boot(0).await;
    let admin = s.admin().await;
    let customer = admin.customer("Initech").await;
    let id = customer["id"].as_u64().expect("id");
    let docs = format!("/api/v1/customer/{id}/documents");
    let offer = pdf(&[
        "Offer for the Zeppelin project",
        "Delivery within thirty days",
    ]);
    let res = upload(&admin, &format!("{docs}?name=offer.pdf"), &offer).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let doc: Value = res.json().await.expect("json");
    let doc_id = doc["id"].as_u64().expect("doc");

    // Found by its text, at its page, as a hit on the record it is attached to.
    let answer = search_until(&admin, "zeppelin", 1).await;
    let hit = &answer["hits"][0];
    assert_eq!(
        (hit["entity"].as_str(), hit["id"].as_u64()),
        (Some("customer"), Some(id)),
        "{answer}"
    );
    assert_eq!(hit["title"], "offer.pdf");
    assert_eq!(hit["document"]["id"], doc_id);
    assert_eq!(hit["document"]["page"], 1);
    assert_eq!(
        hit["url"],
        format!("/documents/{doc_id}/content?inline=1#page=1")
    );
    let answer = search_until(&admin, "thirty days", 1).await;
    assert_eq!(
        answer["hits"][0]["document"]["locator"], "page 2",
        "{answer}"
    );
    let page = admin.text(&format!("/documents/{doc_id}")).await;
    assert!(
        page.contains("Its text is searchable (2 passages)"),
        "{page}"
    );
    let found = admin.text("/search?q=zeppelin").await;
    assert!(
        found.contains("offer.pdf") && found.contains("page 1"),
        "{found}"
    );

    // A viewer reads customers, so finds it; a sales rep only once the customer is theirs.
    let password = s.add_user("vie", "Viewer").await;
    let viewer = s.api("vie", &password).await;
    search_until(&viewer, "zeppelin", 1).await;
    let password = s.add_user("rep", "Sales rep").await;
    let rep = s.api("rep", &password).await;
    search_until(&rep, "zeppelin", 0).await;
    let rep_id = admin.json("/api/v1/user?f.username=rep").await["data"][0]["id"].clone();
    let res = admin
        .patch(
            &format!("/api/v1/customer/{id}"),
            &serde_json::json!({ "version": customer["version"], "owner": rep_id }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    search_until(&rep, "zeppelin", 1).await;

    // A file without readable text is kept and found by its name; its page says why.
    let mut locked = b"%PDF-1.4\n1 0 obj << /Filter /Standard /V 5 /R 6 >> endobj\n".to_vec();
    locked.extend_from_slice(b"trailer << /Root 2 0 R /Encrypt 1 0 R >>\n%%EOF\n");
    let res = upload(&admin, &format!("{docs}?name=locked%20terms.pdf"), &locked).await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "an unreadable file is still kept"
    );
    let locked_id = res.json::<Value>().await.expect("json")["id"]
        .as_u64()
        .expect("id");
    let answer = search_until(&admin, "locked terms", 1).await;
    assert_eq!(answer["hits"][0]["document"]["id"], locked_id);
    let page = admin.text(&format!("/documents/{locked_id}")).await;
    assert!(page.contains("the PDF is encrypted"), "{page}");

    // HTML by its headings.
    let html = b"<h1>Terms</h1><p>Payment within <b>ten</b> days of the invoice.</p>";
    let res = upload(&admin, &format!("{docs}?name=terms.html"), html).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let answer = search_until(&admin, "payment ten", 1).await;
    assert_eq!(
        answer["hits"][0]["document"]["locator"], "Terms",
        "{answer}"
    );

    // Removed: no longer found.
    let res = admin.delete(&format!("/api/v1/documents/{doc_id}")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    search_until(&admin, "zeppelin", 0).await;
}
