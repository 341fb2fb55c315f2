use std::collections::HashSet;

use tokio::io::AsyncWriteExt;

use super::*;

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path().join("blobs")).expect("open");
    (dir, store)
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
];

#[tokio::test]
async fn the_same_content_is_stored_once_under_its_sha256() {
    let (_dir, store) = store();
    let first = store.put(&b"invoice 42"[..], 1024).await.expect("put");
    assert_eq!(first.id, BlobId::of(b"invoice 42"));
    // The name is the SHA-256 of the bytes (as `sha256sum` prints it) and its path.
    assert_eq!(
        first.id.to_hex(),
        "8c4e4157ac62218e4bd1fd628d09ff214105bbde5a46f6308b7cbae93fa96183"
    );
    assert!(
        store
            .path(first.id)
            .ends_with("8c/4e4157ac62218e4bd1fd628d09ff214105bbde5a46f6308b7cbae93fa96183")
    );
    assert_eq!((first.size, first.existed), (10, false));
    let again = store.put(&b"invoice 42"[..], 1024).await.expect("put");
    assert_eq!((again.id, again.existed), (first.id, true));
    assert_eq!(store.list().expect("list"), vec![first.id]);
    assert_eq!(
        store.read(first.id, None).await.expect("read"),
        b"invoice 42"
    );
    assert_eq!(files_in(&store.root.join("tmp")), 0, "no temp file is left");
}

#[tokio::test]
async fn an_upload_over_its_limit_is_refused_and_leaves_nothing() {
    let (_dir, store) = store();
    let big = vec![7u8; 200_000];
    let e = store.put(&big[..], 100_000).await.expect_err("too large");
    assert!(matches!(e, BlobError::TooLarge { limit: 100_000 }), "{e}");
    assert!(e.to_string().contains("nothing was stored"));
    assert!(store.list().expect("list").is_empty());
    assert_eq!(files_in(&store.root.join("tmp")), 0);
    // Exactly at the limit is fine.
    let ok = store
        .put(&big[..100_000], 100_000)
        .await
        .expect("at the limit");
    assert_eq!(ok.size, 100_000);
}

#[tokio::test]
async fn the_type_comes_from_the_content_not_the_name() {
    let (_dir, store) = store();
    let png = store.put(PNG, 1024).await.expect("png");
    assert_eq!(png.mime, "image/png");
    let pdf = store
        .put(&b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"[..], 1024)
        .await
        .expect("pdf");
    assert_eq!(pdf.mime, "application/pdf");
    let text = store
        .put("Grüezi, Rechnung 7\n".as_bytes(), 1024)
        .await
        .expect("text");
    assert_eq!(text.mime, "text/plain");
    let binary = store
        .put(&[0u8, 1, 2, 3, 255][..], 1024)
        .await
        .expect("bin");
    assert_eq!(binary.mime, "application/octet-stream");
    // A multi-byte character cut at the sniffing boundary is still text.
    let mut long = "é".repeat(SNIFF_BYTES / 2);
    long.insert(0, 'x');
    assert_eq!(detect(&long.as_bytes()[..SNIFF_BYTES]), "text/plain");
}

#[tokio::test]
async fn ranges_are_read_as_asked_and_refused_outside_the_blob() {
    let (_dir, store) = store();
    let blob = store.put(&b"0123456789"[..], 1024).await.expect("put");
    assert_eq!(
        store.read(blob.id, Some((2, 4))).await.expect("range"),
        b"234"
    );
    assert_eq!(store.read(blob.id, Some((9, 9))).await.expect("last"), b"9");
    for (start, end) in [(5, 10), (7, 3)] {
        let e = store
            .read(blob.id, Some((start, end)))
            .await
            .expect_err("outside");
        assert!(matches!(e, BlobError::BadRange { size: 10, .. }), "{e}");
    }
    let missing = BlobId::of(b"never stored");
    assert!(matches!(
        store.read(missing, None).await,
        Err(BlobError::NotFound(_))
    ));
    let empty = store.put(&b""[..], 1024).await.expect("empty");
    assert_eq!(store.read(empty.id, None).await.expect("empty"), b"");
}

#[tokio::test]
async fn a_changed_file_no_longer_verifies() {
    let (_dir, store) = store();
    let blob = store.put(&b"ledger export"[..], 1024).await.expect("put");
    store.verify(blob.id).await.expect("intact");
    std::fs::write(store.path(blob.id), b"ledger exporT").expect("tamper");
    assert!(matches!(
        store.verify(blob.id).await,
        Err(BlobError::Damaged(_))
    ));
}

#[tokio::test]
async fn a_sweep_keeps_what_is_referenced_or_pinned() {
    let (_dir, store) = store();
    let kept = store.put(&b"referenced"[..], 1024).await.expect("put");
    let gone = store.put(&b"orphan"[..], 1024).await.expect("put");
    let held = store.put(&b"just uploaded"[..], 1024).await.expect("put");
    let (kept_id, gone_id, held_id) = (kept.id, gone.id, held.id);
    drop((kept, gone));
    let mut asked = Vec::new();
    let report = store
        .sweep(|id| {
            asked.push(id);
            Ok::<_, String>(id == kept_id)
        })
        .expect("sweep");
    assert_eq!(
        report,
        Sweep {
            referenced: 1,
            pinned: 1,
            removed: 1,
            removed_bytes: 6,
            gone: vec![gone_id],
        }
    );
    assert!(store.contains(kept_id) && store.contains(held_id));
    assert!(!store.contains(gone_id));
    // A pinned blob is not even asked about; once released, it goes like any orphan.
    assert!(!asked.contains(&held_id));
    drop(held);
    let report = store
        .sweep(|id| Ok::<_, String>(id == kept_id))
        .expect("sweep");
    assert_eq!((report.removed, report.pinned), (1, 0));
    assert!(!store.contains(held_id));
    // When the references cannot be read, nothing more is removed.
    let e = store
        .sweep(|_| Err::<bool, _>("the store is closed"))
        .expect_err("no answer");
    assert!(e.to_string().contains("the store is closed"), "{e}");
    assert!(store.contains(kept_id));
}

#[tokio::test]
async fn opening_removes_what_an_interrupted_upload_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("blobs");
    let store = BlobStore::open(&root).expect("open");
    let kept = store.put(&b"a whole file"[..], 1024).await.expect("put");
    std::fs::write(root.join("tmp").join("upload-cut-short"), b"half a fi").expect("write");
    let store = BlobStore::open(&root).expect("reopen");
    assert_eq!(files_in(&root.join("tmp")), 0);
    assert_eq!(store.list().expect("list"), vec![kept.id]);
}

#[test]
fn ids_are_64_lowercase_hex_digits() {
    let id = BlobId::of(b"x");
    assert_eq!(id.to_hex().parse::<BlobId>().expect("round trip"), id);
    for bad in [
        "",
        "abc",
        &"G".repeat(64),
        &id.to_hex().to_uppercase(),
        "../../etc/passwd",
    ] {
        assert!(bad.parse::<BlobId>().is_err(), "{bad}");
    }
}

#[tokio::test]
async fn concurrent_uploads_of_the_same_file_end_as_one_blob() {
    let (_dir, store) = store();
    let content = vec![42u8; 300_000];
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, content) = (store.clone(), content.clone());
        tasks.push(tokio::spawn(async move {
            store.put(&content[..], 1 << 20).await.expect("put")
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        ids.insert(t.await.expect("task").id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(store.list().expect("list").len(), 1);
    store
        .verify(*ids.iter().next().expect("one"))
        .await
        .expect("whole");
    assert_eq!(files_in(&store.root.join("tmp")), 0);
}

/// The start of a Word document: a ZIP whose first entry is under `word/`.
fn docx() -> Vec<u8> {
    let mut b = b"PK\x03\x04".to_vec();
    b.extend_from_slice(&[0u8; 26]);
    b.extend_from_slice(b"word/document.xml");
    b
}

#[tokio::test]
async fn a_name_that_lies_about_the_content_or_a_program_is_not_admissible() {
    let (_dir, store) = store();
    let png = store.put(PNG, 1024).await.expect("png");
    let word = store.put(&docx()[..], 1024).await.expect("docx");
    let mut program = b"\x7fELF\x02\x01\x01".to_vec();
    program.resize(64, 0);
    let elf = store.put(&program[..], 1024).await.expect("elf");
    assert_eq!(
        word.mime,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    );
    assert_eq!(admissible("scan.png", png.mime), Ok(()));
    assert_eq!(admissible("SCAN.PNG", png.mime), Ok(()));
    assert_eq!(admissible("letter.docx", word.mime), Ok(()));
    // An extension nobody claims, or none, takes the content as it is.
    assert_eq!(admissible("scan", png.mime), Ok(()));
    assert_eq!(admissible("scan.dat", png.mime), Ok(()));
    let e = admissible("invoice.pdf", png.mime).expect_err("a PNG named .pdf");
    assert!(
        e.contains("a PNG image (image/png), not a .pdf file"),
        "{e}"
    );
    let e = admissible("notes.txt", word.mime).expect_err("a Word file named .txt");
    assert!(e.contains("a Word document"), "{e}");
    let e = admissible("tool.pdf", elf.mime).expect_err("a program");
    assert!(e.contains("programs are not kept"), "{e}");
}

#[tokio::test]
async fn uploading_stored_content_again_pins_it_until_its_record_is_written() {
    let (_dir, store) = store();
    let first = store.put(&b"contract"[..], 1024).await.expect("put");
    let id = first.id;
    drop(first);
    // Nothing names it any more, but the same file is being uploaded again …
    let again = store.put(&b"contract"[..], 1024).await.expect("again");
    assert!(again.existed);
    let report = store.sweep(|_| Ok::<_, String>(false)).expect("sweep");
    assert_eq!((report.pinned, report.removed), (1, 0), "{report:?}");
    assert!(store.contains(id));
    // … and two uploads of it pin it until both are done.
    let third = store.put(&b"contract"[..], 1024).await.expect("third");
    drop(again);
    assert_eq!(
        store
            .sweep(|_| Ok::<_, String>(false))
            .expect("sweep")
            .pinned,
        1
    );
    drop(third);
    assert_eq!(
        store
            .sweep(|_| Ok::<_, String>(false))
            .expect("sweep")
            .removed,
        1
    );
}

#[tokio::test]
async fn a_download_opens_the_file_at_its_range() {
    let (_dir, store) = store();
    let blob = store.put(&b"0123456789"[..], 1024).await.expect("put");
    let (mut file, len) = store.open_range(blob.id, Some((2, 5))).await.expect("open");
    let mut got = vec![0u8; len as usize];
    file.read_exact(&mut got).await.expect("read");
    assert_eq!(got, b"2345");
    assert_eq!(store.open_range(blob.id, None).await.expect("whole").1, 10);
    assert!(matches!(
        store.open_range(blob.id, Some((5, 10))).await,
        Err(BlobError::BadRange { size: 10, .. })
    ));
    assert!(matches!(
        store.open_range(BlobId::of(b"absent"), None).await,
        Err(BlobError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_blob_that_cannot_be_put_in_place_is_refused_and_the_store_goes_on() {
    let (_dir, store) = store();
    let id = BlobId::of(b"blocked");
    // Its prefix directory cannot be made: a file stands where it would be.
    std::fs::write(store.root.join(&id.to_hex()[..2]), b"in the way").expect("block");
    let e = store
        .put(&b"blocked"[..], 1024)
        .await
        .expect_err("cannot be placed");
    assert!(matches!(e, BlobError::Io { .. }), "{e}");
    assert_eq!(files_in(&store.root.join("tmp")), 0, "no temp file is left");
    // Nothing is left pinned or locked: other uploads and the sweep go on.
    let next = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        store.put(&b"another file"[..], 1024),
    )
    .await
    .expect("the store is not stuck")
    .expect("put");
    drop(next);
    let report = store.sweep(|_| Ok::<_, String>(false)).expect("sweep");
    assert_eq!((report.pinned, report.removed), (0, 1), "{report:?}");
}

#[tokio::test]
async fn an_upload_dropped_half_way_leaves_no_temp_file() {
    let (_dir, store) = store();
    let (mut tx, rx) = tokio::io::duplex(64);
    let upload = tokio::spawn({
        let store = store.clone();
        async move { store.put(rx, 1 << 20).await }
    });
    tx.write_all(b"the first half of a file")
        .await
        .expect("write");
    tx.flush().await.expect("flush");
    // Until the temp file exists, the upload has not begun writing.
    for _ in 0..100 {
        if files_in(&store.root.join("tmp")) == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(files_in(&store.root.join("tmp")), 1);
    upload.abort();
    assert!(upload.await.expect_err("aborted").is_cancelled());
    assert_eq!(files_in(&store.root.join("tmp")), 0);
    assert!(store.list().expect("list").is_empty());
}
