//! Documents over a real store file: attached through their record's permissions,
//! versioned through their history, counted per blob, gone with their record.

use super::*;
use crate::documents::{MAX_PER_RECORD, StoredBlob};
use crate::test_entities::CUSTOMER;
use crate::tests::{fixture, form};

fn referenced(k: &Kernel, blob: &StoredBlob) -> bool {
    let mut id = [0u8; 32];
    hex::decode_to_slice(&blob.id, &mut id).expect("hex");
    k.blob_referenced(&id).expect("read")
}

fn blob(byte: char, size: u64, mime: &str) -> StoredBlob {
    StoredBlob {
        id: byte.to_string().repeat(64),
        size,
        mime: mime.into(),
    }
}

async fn user(f: &crate::tests::Fixture, company: u64, role: &str, name: &str) -> Principal {
    let role = f.kernel.role_by_name(company, role).expect("role");
    f.kernel
        .create_user(company, name, name, "a long enough password", role)
        .await
        .expect("user");
    f.kernel
        .login(name, "a long enough password", None)
        .await
        .expect("login")
        .1
        .principal
}

async fn initech(f: &crate::tests::Fixture) -> Record {
    f.kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "Initech"), ("status", "Lead")]),
        )
        .await
        .expect("customer")
}

#[tokio::test]
async fn a_document_is_read_and_written_through_its_record() {
    let f = fixture().await;
    let k = &f.kernel;
    let c = initech(&f).await;
    let doc = k
        .attach(
            &f.admin,
            "customer",
            c.id,
            "../contract.pdf",
            blob('a', 10, "application/pdf"),
        )
        .await
        .expect("attach");
    assert_eq!(
        (doc.name.as_str(), doc.revision, doc.entity),
        ("contract.pdf", 1, "customer")
    );
    assert_eq!(doc.updated_by, "Ada Admin");

    // A viewer reads the record, so lists and opens its documents, but may not add one.
    let viewer = user(&f, f.company, "Viewer", "vic").await;
    let listed = k.documents(&viewer, "customer", c.id).expect("list");
    assert_eq!(listed.iter().map(|d| d.id).collect::<Vec<_>>(), [doc.id]);
    assert_eq!(k.document(&viewer, doc.id).expect("open").0, listed[0]);
    let e = k
        .attach(
            &viewer,
            "customer",
            c.id,
            "x.txt",
            blob('b', 1, "text/plain"),
        )
        .await
        .expect_err("viewer attaches");
    assert!(matches!(e, KernelError::Forbidden { .. }), "{e:?}");
    let e = k
        .remove_document(&viewer, doc.id, None)
        .await
        .expect_err("viewer removes");
    assert!(matches!(e, KernelError::Forbidden { .. }), "{e:?}");

    // Another company's administrator finds neither the record nor the document.
    let other = k.create_company("Other", "EUR").await.expect("company");
    let olga = user(&f, other, "Administrator", "olga").await;
    for e in [
        k.documents(&olga, "customer", c.id)
            .expect_err("their list"),
        k.document(&olga, doc.id).expect_err("their document"),
        k.attach(&olga, "customer", c.id, "x", blob('b', 1, "text/plain"))
            .await
            .expect_err("attach there"),
        k.remove_document(&olga, doc.id, None)
            .await
            .expect_err("remove there"),
    ] {
        assert!(matches!(e, KernelError::NotFound(_)), "{e:?}");
    }
    // No role may name documents: they are not an entity of the registry.
    let e = k
        .create(
            &f.admin,
            &builtin::ROLE,
            form(&[("name", "Docs"), ("permissions", "document:r")]),
        )
        .await
        .expect_err("a grant on documents");
    assert!(matches!(e, KernelError::Invalid(_)), "{e:?}");
    assert!(k.entity("document").is_err());
}

#[tokio::test]
async fn versions_are_the_documents_history_and_blobs_are_counted_per_version() {
    let f = fixture().await;
    let k = &f.kernel;
    let c = initech(&f).await;
    let (a, b) = (
        blob('a', 10, "application/pdf"),
        blob('b', 12, "application/pdf"),
    );
    let doc = k
        .attach(&f.admin, "customer", c.id, "offer.pdf", a.clone())
        .await
        .expect("v1");
    let v2 = k
        .add_version(
            &f.admin,
            doc.id,
            Some(doc.version),
            Some("offer v2.pdf"),
            b.clone(),
        )
        .await
        .expect("v2");
    assert_eq!(
        (v2.revision, v2.name.as_str(), v2.size),
        (2, "offer v2.pdf", 12)
    );
    // A change based on the first version is refused now.
    let e = k
        .add_version(&f.admin, doc.id, Some(doc.version), None, a.clone())
        .await
        .expect_err("stale");
    assert!(e.to_string().contains("changed since you opened it"), "{e}");
    let (_, versions) = k.document(&f.admin, doc.id).expect("open");
    let seen: Vec<(u64, &str, &str)> = versions
        .iter()
        .map(|v| (v.revision, v.name.as_str(), v.sha256.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (2, "offer v2.pdf", b.id.as_str()),
            (1, "offer.pdf", a.id.as_str())
        ]
    );

    // The same content attached again is counted again; removing one copy keeps it.
    let copy = k
        .attach(&f.admin, "customer", c.id, "copy.pdf", a.clone())
        .await
        .expect("copy");
    assert!(referenced(k, &a) && referenced(k, &b));
    k.remove_document(&f.admin, copy.id, Some(copy.version))
        .await
        .expect("remove copy");
    assert!(referenced(k, &a), "the first document still names it");
    assert!(k.document(&f.admin, copy.id).is_err());

    // Deleting the record deletes its documents and releases every version's blob.
    k.delete(&f.admin, &CUSTOMER, c.id, None)
        .await
        .expect("delete customer");
    assert!(!referenced(k, &a) && !referenced(k, &b));
    assert!(matches!(
        k.document(&f.admin, doc.id),
        Err(KernelError::NotFound(_))
    ));
    // And each step left its event, so the audit chain holds them all.
    k.verify_audit().expect("the audit chain holds");
}

#[tokio::test]
async fn a_record_holds_a_bounded_number_of_documents() {
    let f = fixture().await;
    let k = &f.kernel;
    let c = initech(&f).await;
    for i in 0..MAX_PER_RECORD {
        k.attach(
            &f.admin,
            "customer",
            c.id,
            &format!("{i}.txt"),
            blob('c', 1, "text/plain"),
        )
        .await
        .expect("attach");
    }
    let e = k
        .attach(
            &f.admin,
            "customer",
            c.id,
            "one more.txt",
            blob('c', 1, "text/plain"),
        )
        .await
        .expect_err("over the bound");
    assert!(
        e.to_string().contains("the most one record may hold"),
        "{e}"
    );
    assert_eq!(
        k.documents(&f.admin, "customer", c.id).expect("list").len(),
        MAX_PER_RECORD
    );
}
