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

async fn put(store: &Store, key: &'static [u8], value: &'static [u8]) {
    store
        .write(move |txn| {
            txn.put(Table::Meta, key.to_vec(), value.to_vec());
            Ok::<_, TestError>(txn.emit(key.to_vec()))
        })
        .await
        .expect("write");
}

fn applied_lsn(store: &Store) -> u64 {
    let r = store.read().expect("read");
    let v = r.get(Table::Store, WAL_LSN).expect("get");
    v.as_deref()
        .and_then(decode_u64)
        .expect("the store records its lsn")
}

#[tokio::test]
async fn a_clean_close_leaves_nothing_to_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nexus.redb");
    let store = Store::open(&path).expect("open");
    put(&store, b"a", b"1").await;
    put(&store, b"b", b"2").await;
    assert!(store.writer_stats().commits >= 1);
    drop(store);
    assert!(
        path.with_extension("wal").exists(),
        "the log sits beside the data file"
    );
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.writer_stats().replayed, 0);
    let r = store.read().expect("read");
    assert_eq!(r.get(Table::Meta, b"b").expect("get"), Some(b"2".to_vec()));
    assert_eq!(store.head(), 2);
}

/// What a crash leaves: batches in the log that the data file's last checkpoint lacks.
#[tokio::test]
async fn batches_in_the_log_beyond_the_checkpoint_are_applied_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nexus.redb");
    let store = Store::open(&path).expect("open");
    put(&store, b"a", b"1").await;
    let applied = applied_lsn(&store);
    let id = {
        let r = store.read().expect("read");
        let v = r.get(Table::Store, STORE_ID).expect("get");
        v.as_deref().and_then(decode_u64).expect("id")
    };
    drop(store);

    let (mut log, found) =
        wal::Wal::open(&path.with_extension("wal"), id, applied).expect("open log");
    assert!(found.is_empty());
    log.rewind();
    let mut batch = wal::Effects::default();
    batch.put(Table::Meta, b"a", b"changed");
    batch.put(Table::Meta, b"c", b"3");
    batch.put(Table::ChangeLog, &u64_key(2), b"c");
    log.append(applied + 1, batch.as_bytes()).expect("append");
    let mut batch = wal::Effects::default();
    batch.delete(Table::Meta, b"c");
    batch.put(Table::ChangeLog, &u64_key(3), b"c gone");
    log.append(applied + 2, batch.as_bytes()).expect("append");
    drop(log);

    let store = Store::open(&path).expect("reopen replays");
    assert_eq!(store.writer_stats().replayed, 2);
    assert_eq!(applied_lsn(&store), applied + 2);
    assert_eq!(
        store.head(),
        3,
        "the change log continues after the replayed entries"
    );
    let r = store.read().expect("read");
    assert_eq!(
        r.get(Table::Meta, b"a").expect("get"),
        Some(b"changed".to_vec())
    );
    assert_eq!(r.get(Table::Meta, b"c").expect("get"), None);
    drop(r);
    // New batches follow the replayed ones; nothing is replayed twice.
    put(&store, b"d", b"4").await;
    assert_eq!(applied_lsn(&store), applied + 3);
    assert_eq!(store.head(), 4);
    drop(store);
    let store = Store::open(&path).expect("third open");
    assert_eq!(store.writer_stats().replayed, 0);
    let r = store.read().expect("read");
    assert_eq!(r.get(Table::Meta, b"d").expect("get"), Some(b"4".to_vec()));
}

#[tokio::test]
async fn a_log_of_another_data_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = dir.path().join("one.redb");
    let two = dir.path().join("two.redb");
    drop(Store::open(&one).expect("open one"));
    drop(Store::open(&two).expect("open two"));
    std::fs::copy(one.with_extension("wal"), two.with_extension("wal")).expect("copy");
    let e = Store::open(&two).err().expect("a foreign log is refused");
    assert!(
        e.to_string().contains("belongs to another data file"),
        "{e}"
    );
}

#[tokio::test]
async fn a_data_file_in_another_format_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nexus.redb");
    drop(Store::open(&path).expect("create"));
    // A file from before formats were recorded: no `format` key.
    {
        let db = Database::builder().create(&path).expect("redb");
        let w = db.begin_write().expect("write");
        w.open_table(Table::Store.def())
            .expect("table")
            .remove(FORMAT_KEY)
            .expect("remove");
        w.commit().expect("commit");
    }
    let e = Store::open(&path).err().expect("refused");
    assert_eq!(e, StoreError::Format(1));
    let m = e.to_string();
    assert!(
        m.contains("format 1") && m.contains(&format!("format {FORMAT}")),
        "{m}"
    );
    assert!(m.contains("Move the data directory aside"), "{m}");
}
