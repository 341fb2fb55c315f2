use std::ops::ControlFlow;

use super::*;

#[derive(Debug, PartialEq)]
enum TestError {
    Store(String),
    Refused,
}

impl From<StoreError> for TestError {
    fn from(e: StoreError) -> Self {
        TestError::Store(e.to_string())
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("nexus.redb")).expect("open");
    (dir, store)
}

#[tokio::test]
async fn a_failed_command_leaves_no_writes_and_no_changes() {
    let (_dir, store) = open();
    let ok = store
        .write(|txn| {
            txn.put(Table::Meta, b"a".to_vec(), b"1".to_vec());
            Ok::<_, TestError>(txn.emit(b"first".to_vec()))
        })
        .await;
    assert_eq!(ok, Ok(1));
    let refused = store
        .write(|txn| {
            txn.put(Table::Meta, b"b".to_vec(), b"2".to_vec());
            txn.emit(b"never".to_vec());
            Err::<(), _>(TestError::Refused)
        })
        .await;
    assert_eq!(refused, Err(TestError::Refused));
    let r = store.read().expect("read");
    assert_eq!(r.get(Table::Meta, b"a").expect("get"), Some(b"1".to_vec()));
    assert_eq!(r.get(Table::Meta, b"b").expect("get"), None);
    assert_eq!(store.head(), 1);
    let mut log = Vec::new();
    r.scan(Table::ChangeLog, .., false, |k, v| {
        log.push((decode_u64(k), v.to_vec()));
        ControlFlow::Continue(())
    })
    .expect("scan");
    assert_eq!(log, vec![(Some(1), b"first".to_vec())]);
}

#[tokio::test]
async fn concurrent_commands_share_commits_and_get_gap_free_sequences() {
    let (_dir, store) = open();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.write(move |txn| {
                txn.put(
                    Table::Records,
                    u64_key(i).to_vec(),
                    i.to_le_bytes().to_vec(),
                );
                Ok::<_, TestError>(txn.emit(i.to_be_bytes().to_vec()))
            })
            .await
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.expect("join").expect("write"));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    let stats = store.writer_stats();
    assert_eq!(stats.commands, 200);
    assert!(stats.commits <= 200 && stats.commits >= 1);
}

#[tokio::test]
async fn reads_see_own_writes_and_staged_deletes_inside_a_command() {
    let (_dir, store) = open();
    let seen = store
        .write(|txn| {
            txn.put(Table::Audit, u64_key(1).to_vec(), b"one".to_vec());
            txn.put(Table::Audit, u64_key(2).to_vec(), b"two".to_vec());
            let own = txn.get(Table::Audit, &u64_key(2))?;
            Ok::<_, TestError>(own)
        })
        .await
        .expect("write");
    assert_eq!(seen, Some(b"two".to_vec()));
    let prefix_seen = store
        .write(|txn| {
            let before = txn.any_with_prefix(Table::Audit, &[0])?;
            txn.delete(Table::Audit, u64_key(1).to_vec());
            txn.delete(Table::Audit, u64_key(2).to_vec());
            let after = txn.any_with_prefix(Table::Audit, &[0])?;
            Err::<(), _>(TestError::Store(format!("{before} {after}")))
        })
        .await;
    assert_eq!(
        prefix_seen,
        Err(TestError::Store("true false".into())),
        "staged deletes hide stored keys"
    );
    let r = store.read().expect("read");
    assert!(
        r.get(Table::Audit, &u64_key(1)).expect("get").is_some(),
        "the refused command deleted nothing"
    );
}

#[tokio::test]
async fn data_and_sequence_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nexus.redb");
    {
        let store = Store::open(&path).expect("open");
        for _ in 0..3 {
            store
                .write(|txn| Ok::<_, TestError>(txn.emit(b"x".to_vec())))
                .await
                .expect("write");
        }
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.head(), 3);
    let seq = store
        .write(|txn| Ok::<_, TestError>(txn.emit(b"y".to_vec())))
        .await
        .expect("write");
    assert_eq!(seq, 4);
}

#[test]
fn a_second_open_of_the_same_file_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nexus.redb");
    let _first = Store::open(&path).expect("open");
    let second = Store::open(&path);
    assert!(
        matches!(second, Err(StoreError::Locked(_))),
        "{:?}",
        second.err()
    );
}

#[test]
fn prefix_end_is_the_next_prefix() {
    assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
    assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
    assert_eq!(prefix_end(&[0xff, 0xff]), None);
}
