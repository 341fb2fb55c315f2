//! The spine over a real store file: the event log, the module write path, the
//! tailer contract and the module registry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_store::Table;

use super::*;
use crate::test_entities::{ALPHA, BETA, CONTACT, CUSTOMER};
use crate::tests::{fixture, form};

fn install_test_modules() {
    crate::test_entities::install();
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[tokio::test]
async fn every_change_is_one_event_with_its_command_version_and_images() {
    let f = fixture().await;
    let c = f
        .kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "Initech"), ("status", "Lead")]),
        )
        .await
        .expect("create");
    let c = f
        .kernel
        .update(&f.admin, &CUSTOMER, c.id, 1, form(&[("city", "Austin")]))
        .await
        .expect("update");
    f.kernel
        .delete(&f.admin, &CUSTOMER, c.id, Some(2))
        .await
        .expect("delete");
    // The history is read from the one log, newest first.
    let h = f
        .kernel
        .history(&f.admin, &CUSTOMER, c.id)
        .expect("history");
    let ops: Vec<(Op, u64)> = h.iter().map(|e| (e.op, e.version)).collect();
    assert_eq!(ops, [(Op::Delete, 3), (Op::Update, 2), (Op::Create, 1)]);
    let (delete, update, create) = (&h[0], &h[1], &h[2]);
    assert!(delete.after.is_none(), "a delete is a tombstone");
    assert_eq!(
        delete.before, update.after,
        "the tombstone carries what was deleted"
    );
    assert_eq!(create.before, None);
    assert_eq!(
        update.after.as_ref().and_then(|a| a.get("city")),
        Some(&serde_json::json!("Austin"))
    );
    for e in &h {
        assert_eq!(e.command, e.seq, "each of these commands wrote one event");
        assert_eq!(
            (e.entity.as_str(), e.record, e.company),
            ("customer", c.id, f.company)
        );
        assert_eq!(e.actor, f.admin.user_id);
    }
    let report = f.kernel.verify_audit().expect("the chain verifies");
    assert_eq!(report.entries, f.kernel.log_head());
}

#[tokio::test]
async fn a_module_command_is_one_command_in_the_log() {
    install_test_modules();
    let f = fixture().await;
    let head = f.kernel.log_head();
    let (customer, contact) = f
        .kernel
        .command(&ALPHA, &f.admin, |cmd| {
            let c = cmd.create(
                &CUSTOMER,
                BTreeMap::from([("name", text("Umbrella")), ("status", text("Lead"))]),
            )?;
            let p = cmd.create(
                &CONTACT,
                BTreeMap::from([("name", text("Alice")), ("customer", Value::Ref(c.id))]),
            )?;
            Ok((c.id, p.id))
        })
        .await
        .expect("command");
    let commands = f.kernel.commands_since(head, 1).expect("read the log");
    assert_eq!(
        commands.len(),
        1,
        "a command is never cut, even past the limit"
    );
    let events = &commands[0].events;
    assert_eq!(commands[0].command, head + 1);
    let records: Vec<(&str, u64)> = events
        .iter()
        .map(|e| (e.entity.as_str(), e.record))
        .collect();
    assert_eq!(records, [("customer", customer), ("contact", contact)]);
    assert!(events.iter().all(|e| e.command == head + 1));
    assert_eq!(commands[0].last_seq(), head + 2);
}

#[tokio::test]
async fn module_state_without_an_event_is_refused_and_writes_nothing() {
    install_test_modules();
    let f = fixture().await;
    let head = f.kernel.log_head();
    let e = f
        .kernel
        .command(&ALPHA, &f.admin, |cmd| {
            cmd.put(b"counter".to_vec(), vec![1]);
            Ok(())
        })
        .await
        .expect_err("a silent state change is refused");
    assert!(e.to_string().contains("without leaving an event"), "{e}");
    assert_eq!(f.kernel.log_head(), head);
    let state = f.kernel.module_state(&ALPHA).expect("state");
    assert_eq!(
        state.get(b"counter").expect("get"),
        None,
        "nothing was written"
    );

    // With a setting beside it, the same write stands, and the setting is a record
    // with its history.
    f.kernel
        .command(&ALPHA, &f.admin, |cmd| {
            cmd.put(b"counter".to_vec(), vec![1]);
            cmd.set_setting("mode", Some("fast".into()))
        })
        .await
        .expect("state with its event");
    f.kernel
        .command(&ALPHA, &f.admin, |cmd| {
            assert_eq!(cmd.setting("mode")?.as_deref(), Some("fast"));
            cmd.set_setting("mode", Some("careful".into()))
        })
        .await
        .expect("change the setting");
    let state = f.kernel.module_state(&ALPHA).expect("state");
    assert_eq!(state.get(b"counter").expect("get"), Some(vec![1]));
    assert_eq!(
        f.kernel
            .setting(&ALPHA, f.company, "mode")
            .expect("setting")
            .as_deref(),
        Some("careful")
    );
    let page = f
        .kernel
        .list(
            &f.admin,
            &crate::builtin::SETTING,
            &ListQuery {
                limit: 10,
                ..ListQuery::default()
            },
        )
        .expect("settings");
    let id = page.rows[0].id;
    let history = f
        .kernel
        .history(&f.admin, &crate::builtin::SETTING, id)
        .expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[0].before.as_ref().and_then(|b| b.get("value")),
        Some(&serde_json::json!("fast"))
    );
}

#[tokio::test]
async fn a_module_sees_only_its_own_state() {
    install_test_modules();
    let f = fixture().await;
    f.kernel
        .command(&ALPHA, &f.admin, |cmd| {
            cmd.put(b"k".to_vec(), b"alpha's".to_vec());
            cmd.put(b"k2".to_vec(), b"alpha's too".to_vec());
            cmd.set_setting("touched", Some("yes".into()))
        })
        .await
        .expect("alpha writes");
    let seen = f
        .kernel
        .command(&BETA, &f.admin, |cmd| {
            Ok((cmd.get(b"k")?, cmd.scan_prefix(b"k")?))
        })
        .await
        .expect("beta reads");
    assert_eq!(seen, (None, Vec::new()));
    assert_eq!(
        f.kernel.setting(&BETA, f.company, "touched").expect("read"),
        None
    );
    let alpha = f.kernel.module_state(&ALPHA).expect("state");
    let mut keys = Vec::new();
    alpha
        .scan(.., false, |k, _| {
            keys.push(k.to_vec());
            std::ops::ControlFlow::Continue(())
        })
        .expect("scan");
    assert_eq!(
        keys,
        [b"k".to_vec(), b"k2".to_vec()],
        "keys come back without the prefix"
    );
    // A module that was never installed gets nothing.
    static STRAY: Module = Module {
        name: "stray",
        label: "Stray",
        code: 999,
        entities: &[],
        roles: &[],
        demo: None,
        tools: &[],
        jobs: &[],
        schedules: &[],
    };
    let e = f
        .kernel
        .command(&STRAY, &f.admin, |_| Ok(()))
        .await
        .expect_err("not installed");
    assert!(e.to_string().contains("not installed"), "{e}");
}

/// A tailer that records what it is given and fails on demand.
struct Probe {
    name: &'static str,
    seen: Arc<Mutex<Vec<u64>>>,
    /// Fail this many applies with `Retry` first.
    fail_first: u32,
    /// Answer `Stop` for a command that touches this entity.
    refuse: Option<&'static str>,
}

impl Tailer for Probe {
    fn name(&self) -> &'static str {
        self.name
    }

    fn position(&mut self, _head: u64) -> Result<u64, TailError> {
        Ok(self
            .seen
            .lock()
            .map(|s| s.last().copied().unwrap_or(0))
            .unwrap_or(0))
    }

    fn apply(&mut self, commands: &[CommandEvents]) -> Result<(), TailError> {
        if self.fail_first > 0 {
            self.fail_first -= 1;
            return Err(TailError::Retry("the disk is busy".into()));
        }
        if let Some(entity) = self.refuse
            && commands
                .iter()
                .flat_map(|c| &c.events)
                .any(|e| e.entity == entity)
        {
            return Err(TailError::Stop(format!("cannot index a {entity}")));
        }
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| TailError::Stop("poisoned".into()))?;
        seen.extend(commands.iter().flat_map(|c| c.events.iter().map(|e| e.seq)));
        Ok(())
    }
}

/// Waits (up to 10 s) until `check` holds for the named tailer's status.
async fn wait_for(
    kernel: &Kernel,
    name: &str,
    check: impl Fn(&TailerStatus) -> bool,
) -> TailerStatus {
    for _ in 0..1000 {
        if let Some(s) = kernel.tailers().into_iter().find(|t| t.name == name)
            && check(&s)
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "tailer {name} never reached the expected state: {:?}",
        kernel.tailers()
    );
}

#[tokio::test]
async fn a_failed_apply_is_retried_never_skipped() {
    let f = fixture().await;
    for name in ["Hooli", "Pied Piper"] {
        f.kernel
            .create(
                &f.admin,
                &CUSTOMER,
                form(&[("name", name), ("status", "Lead")]),
            )
            .await
            .expect("create");
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let probe = Probe {
        name: "probe",
        seen: seen.clone(),
        fail_first: 3,
        refuse: None,
    };
    let task = tokio::spawn(run_tailer(f.kernel.clone(), probe));
    let head = f.kernel.log_head();
    let status = wait_for(&f.kernel, "probe", |s| s.position == head).await;
    assert_eq!(status.retries, 3);
    assert_eq!(status.state, TailerState::Running);
    assert_eq!(status.lag(f.kernel.log_head()), 0);
    let applied = seen.lock().expect("seen").clone();
    assert_eq!(
        applied,
        (1..=head).collect::<Vec<_>>(),
        "every event once, in order"
    );
    task.abort();
}

#[tokio::test]
async fn an_entry_a_tailer_cannot_apply_stops_it_visibly_and_no_other() {
    let f = fixture().await;
    let c = f
        .kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "Globex"), ("status", "Lead")]),
        )
        .await
        .expect("customer");
    let before_contact = f.kernel.log_head();
    f.kernel
        .create(
            &f.admin,
            &CONTACT,
            form(&[("name", "Hank"), ("customer", &c.id.to_string())]),
        )
        .await
        .expect("contact");
    let picky_seen = Arc::new(Mutex::new(Vec::new()));
    let picky = Probe {
        name: "picky",
        seen: picky_seen.clone(),
        fail_first: 0,
        refuse: Some("contact"),
    };
    let easy_seen = Arc::new(Mutex::new(Vec::new()));
    let easy = Probe {
        name: "easy",
        seen: easy_seen,
        fail_first: 0,
        refuse: None,
    };
    let picky_task = tokio::spawn(run_tailer(f.kernel.clone(), picky));
    let easy_task = tokio::spawn(run_tailer(f.kernel.clone(), easy));
    let head = f.kernel.log_head();
    let stopped = wait_for(&f.kernel, "picky", |s| {
        matches!(s.state, TailerState::Stopped { .. })
    })
    .await;
    match &stopped.state {
        TailerState::Stopped { at, error } => {
            assert!(*at <= before_contact + 1, "stopped at {at}");
            assert!(error.contains("cannot index a contact"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        stopped.position <= before_contact,
        "nothing past the bad command was applied"
    );
    assert!(
        picky_task.await.expect("join").is_err(),
        "run_tailer reports the stop"
    );
    // The other tailer went on, and keeps following new commits.
    wait_for(&f.kernel, "easy", |s| s.position == head).await;
    f.kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "Later"), ("status", "Lead")]),
        )
        .await
        .expect("a later write");
    let later = f.kernel.log_head();
    wait_for(&f.kernel, "easy", |s| {
        s.position == later && s.state == TailerState::Running
    })
    .await;
    easy_task.abort();
}

#[tokio::test]
async fn a_poison_event_stops_the_tailers_that_reach_it_but_not_the_writer() {
    let f = fixture().await;
    let head = f.kernel.log_head();
    // Bytes that are no event, appended behind the kernel's back.
    f.kernel
        .store()
        .write(|txn| {
            txn.emit(b"\xff not an event".to_vec());
            Ok::<_, KernelError>(())
        })
        .await
        .expect("poison");
    let task = tokio::spawn(run_tailer(
        f.kernel.clone(),
        Probe {
            name: "reader",
            seen: Arc::new(Mutex::new(Vec::new())),
            fail_first: 0,
            refuse: None,
        },
    ));
    let s = wait_for(&f.kernel, "reader", |s| {
        matches!(s.state, TailerState::Stopped { .. })
    })
    .await;
    // Whether the poison ends the command before it cannot be known, so that last
    // command is held back too: never half a command.
    assert!(s.position > 0 && s.position < head, "{s:?}");
    assert!(
        matches!(&s.state, TailerState::Stopped { at, error } if *at == head + 1 && error.contains("damaged")),
        "{s:?}"
    );
    assert!(task.await.expect("join").is_err());
    // The appliance still takes writes; the audit check names the damage.
    f.kernel
        .create(
            &f.admin,
            &CUSTOMER,
            form(&[("name", "Still here"), ("status", "Lead")]),
        )
        .await
        .expect("writes go on");
    assert!(f.kernel.verify_audit().is_err());
    assert!(f.kernel.health().is_ok());
}

#[test]
fn the_registry_refuses_modules_that_do_not_fit() {
    static ENTITY_CLASH: EntityDef = EntityDef {
        name: "gadget",
        code: 1, // the company's code
        label: "Gadget",
        plural: "Gadgets",
        module: "clash",
        fields: &[],
        title_field: "name",
        search_fields: &[],
        creation: Creation::ByRole,
    };
    static CLASH: Module = Module {
        name: "clash",
        label: "Clash",
        code: 910,
        entities: &[&ENTITY_CLASH],
        roles: &[],
        demo: None,
        tools: &[],
        jobs: &[],
        schedules: &[],
    };
    static BAD_ROLE: Module = Module {
        name: "badrole",
        label: "Bad role",
        code: 911,
        entities: &[],
        roles: &[("Sneaky", "nothing:rw", "grants on what does not exist")],
        demo: None,
        tools: &[],
        jobs: &[],
        schedules: &[],
    };
    static SAME_CODE: Module = Module {
        name: "samecode",
        label: "Same code",
        code: 901,
        entities: &[],
        roles: &[],
        demo: None,
        tools: &[],
        jobs: &[],
        schedules: &[],
    };
    let cases: [(&[&'static Module], &str); 5] = [
        (&[&ALPHA, &ALPHA], "module alpha is registered twice"),
        (&[&ALPHA, &SAME_CODE], "share a name or a state code (901)"),
        (
            &[&CLASH],
            "entities company and gadget share a name or a storage code (1)",
        ),
        (&[&BAD_ROLE], "role Sneaky"),
        (
            &[&BETA, &BAD_ROLE],
            "role Sneaky: \"nothing\" is not an entity",
        ),
    ];
    for (modules, expected) in cases {
        let e = registry::check_modules(modules).expect_err(expected);
        assert!(e.contains(expected), "{e} (expected: {expected})");
    }
    assert_eq!(registry::check_modules(&[&ALPHA, &BETA]), Ok(()));
}

#[tokio::test]
async fn an_idempotency_key_is_claimed_once_per_user() {
    let f = fixture().await;
    let fp = request_fingerprint(&[b"POST", b"/api/v1/customer", b"{}"]);
    let other = request_fingerprint(&[b"POST", b"/api/v1/customer", b"{\"x\":1}"]);
    let k = &f.kernel;
    assert_eq!(
        k.claim_idempotent(&f.admin, "key-1", fp)
            .await
            .expect("claim"),
        Claim::Fresh
    );
    assert_eq!(
        k.claim_idempotent(&f.admin, "key-1", fp)
            .await
            .expect("again"),
        Claim::InFlight
    );
    assert_eq!(
        k.claim_idempotent(&f.admin, "key-1", other)
            .await
            .expect("other"),
        Claim::Mismatch
    );
    let answer = StoredResponse {
        status: 201,
        content_type: "application/json".into(),
        body: b"{}".to_vec(),
    };
    k.finish_idempotent(&f.admin, "key-1", Some(answer.clone()))
        .await
        .expect("finish");
    assert_eq!(
        k.claim_idempotent(&f.admin, "key-1", fp)
            .await
            .expect("replay"),
        Claim::Replay(answer)
    );
    // Released keys run again; bad keys are refused.
    assert_eq!(
        k.claim_idempotent(&f.admin, "key-2", fp)
            .await
            .expect("claim"),
        Claim::Fresh
    );
    k.finish_idempotent(&f.admin, "key-2", None)
        .await
        .expect("release");
    assert_eq!(
        k.claim_idempotent(&f.admin, "key-2", fp)
            .await
            .expect("again"),
        Claim::Fresh
    );
    for bad in ["", "has space", &"x".repeat(256)] {
        assert!(
            k.claim_idempotent(&f.admin, bad, fp).await.is_err(),
            "{bad:?}"
        );
    }
    // A key claimed by an earlier run and never answered: interrupted, not in flight.
    let restarted = Kernel::new(k.store().clone(), k.shared_clock());
    assert_eq!(
        restarted
            .claim_idempotent(&f.admin, "key-2", fp)
            .await
            .expect("after restart"),
        Claim::Interrupted
    );
    let _ = Table::Idempotency;
}

/// A job handler whose behaviour each test picks.
struct TestJob {
    kind: &'static str,
    behaviour: fn(&JobContext) -> Behaviour,
    timeout: Duration,
}

enum Behaviour {
    Count(u64),
    Panic,
    Hang,
    FailRecord,
    WaitForCancel,
}

impl JobHandler for TestJob {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn run(&self, ctx: JobContext) -> JobFuture<'_> {
        let behaviour = (self.behaviour)(&ctx);
        Box::pin(async move {
            match behaviour {
                Behaviour::Count(n) => {
                    for i in 1..=n {
                        ctx.progress(i, n).await?;
                    }
                    Ok(serde_json::json!({ "counted": n }))
                }
                Behaviour::Panic => panic!("a bug in the job"),
                Behaviour::Hang => {
                    std::future::pending::<()>().await;
                    Ok(serde_json::Value::Null)
                }
                Behaviour::FailRecord => {
                    let id = ctx.job.payload["customer"].as_u64().unwrap_or(0);
                    ctx.kernel.get(&ctx.who, &CUSTOMER, id)?;
                    Ok(serde_json::Value::Null)
                }
                Behaviour::WaitForCancel => loop {
                    if ctx.is_cancelled() {
                        return Err(JobError::Cancelled);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                },
            }
        })
    }
}

fn handler(kind: &'static str, behaviour: fn(&JobContext) -> Behaviour) -> Arc<dyn JobHandler> {
    Arc::new(TestJob {
        kind,
        behaviour,
        timeout: Duration::from_millis(300),
    })
}

/// Waits (up to 10 s) until job `id` reaches `state`; advances the clock by `step`
/// between looks (so backoffs come due).
async fn wait_job(f: &crate::tests::Fixture, clock: &ManualClock, id: u64, state: JobState) -> Job {
    for _ in 0..1000 {
        let job = f.kernel.job(&f.admin, id).expect("job");
        if job.state == state {
            return job;
        }
        clock.advance(time::Duration::seconds(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "job {id} never became {state:?}: {:?}",
        f.kernel.job(&f.admin, id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_once_retry_fail_time_out_and_cancel() {
    install_test_modules();
    let (f, clock) = crate::tests::fixture_with_clock().await;
    let k = &f.kernel;
    k.register_job(handler("test.count", |_| Behaviour::Count(50)))
        .expect("register");
    k.register_job(handler("test.panic", |_| Behaviour::Panic))
        .expect("register");
    k.register_job(handler("test.hang", |_| Behaviour::Hang))
        .expect("register");
    k.register_job(handler("test.record", |_| Behaviour::FailRecord))
        .expect("register");
    k.register_job(handler("test.cancel", |_| Behaviour::WaitForCancel))
        .expect("register");
    assert!(
        k.register_job(handler("test.count", |_| Behaviour::Count(1)))
            .is_err(),
        "one handler per kind"
    );

    // Enqueued with the change that asks for it, in one command.
    let (customer, counted) = k
        .command(&ALPHA, &f.admin, |cmd| {
            let c = cmd.create(
                &CUSTOMER,
                BTreeMap::from([("name", text("Jobs Inc")), ("status", text("Lead"))]),
            )?;
            let job = cmd.enqueue(JobSpec::new(
                "test.count",
                "Count to 50",
                serde_json::json!({}),
            ))?;
            Ok((c.id, job))
        })
        .await
        .expect("command");
    // A refused command enqueues nothing.
    let refused = k
        .command(&ALPHA, &f.admin, |cmd| {
            cmd.enqueue(JobSpec::new("test.count", "never", serde_json::Value::Null))?;
            Err::<(), _>(KernelError::Conflict("no".into()))
        })
        .await;
    assert!(refused.is_err());
    let panics = k
        .enqueue(
            &f.admin,
            JobSpec::new("test.panic", "Panics", serde_json::Value::Null),
        )
        .await
        .expect("enqueue");
    let mut hang = JobSpec::new("test.hang", "Never ends", serde_json::Value::Null);
    hang.max_attempts = 1;
    let hangs = k.enqueue(&f.admin, hang).await.expect("enqueue");
    let gone = k
        .enqueue(
            &f.admin,
            JobSpec::new(
                "test.record",
                "For a deleted record",
                serde_json::json!({ "customer": 999_999 }),
            ),
        )
        .await
        .expect("enqueue");
    let unknown = k
        .enqueue(
            &f.admin,
            JobSpec::new("test.nobody", "No handler", serde_json::Value::Null),
        )
        .await
        .expect("enqueue");
    let workers = jobs::start(k, 2).await.expect("start");

    let done = wait_job(&f, &clock, counted, JobState::Done).await;
    assert_eq!(done.progress, Some((50, 50)));
    assert_eq!(done.result, Some(serde_json::json!({ "counted": 50 })));
    assert_eq!(done.attempts, 1);

    let failed = wait_job(&f, &clock, panics, JobState::Failed).await;
    assert_eq!(
        failed.attempts, 3,
        "retried with backoff up to max_attempts"
    );
    assert!(
        failed.error.as_deref().is_some_and(|e| e.contains("panic")),
        "{failed:?}"
    );

    let timed_out = wait_job(&f, &clock, hangs, JobState::Failed).await;
    assert!(
        timed_out
            .error
            .as_deref()
            .is_some_and(|e| e.contains("did not finish")),
        "{timed_out:?}"
    );

    let failed = wait_job(&f, &clock, gone, JobState::Failed).await;
    assert_eq!(
        failed.attempts, 1,
        "a job for a missing record fails at once"
    );
    assert!(
        failed
            .error
            .as_deref()
            .is_some_and(|e| e.contains("999999")),
        "{failed:?}"
    );

    let failed = wait_job(&f, &clock, unknown, JobState::Failed).await;
    assert!(
        failed
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no handler")),
        "{failed:?}"
    );

    // Cancel: a running job stops when it looks; a finished one cannot be cancelled.
    let waits = k
        .enqueue(
            &f.admin,
            JobSpec::new("test.cancel", "Waits", serde_json::Value::Null),
        )
        .await
        .expect("enqueue");
    wait_job(&f, &clock, waits, JobState::Running).await;
    k.cancel_job(&f.admin, waits).await.expect("cancel");
    wait_job(&f, &clock, waits, JobState::Cancelled).await;
    assert!(k.cancel_job(&f.admin, counted).await.is_err());
    // The rest kept running throughout: the customer is there, the list holds them all.
    assert!(k.get(&f.admin, &CUSTOMER, customer).is_ok());
    assert!(k.jobs(&f.admin, 100).expect("jobs").len() >= 6);
    for w in workers {
        w.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_running_when_the_appliance_stopped_runs_again_and_schedules_enqueue() {
    let (f, clock) = crate::tests::fixture_with_clock().await;
    let k = &f.kernel;
    let id = k
        .enqueue(
            &f.admin,
            JobSpec::new("test.count", "Interrupted", serde_json::Value::Null),
        )
        .await
        .expect("enqueue");
    // Claimed by this run, then the appliance "stops": a new kernel on the same store.
    let claimed = k.claim_job().await.expect("claim").expect("a job");
    assert_eq!((claimed.id, claimed.state), (id, JobState::Running));
    let restarted = Kernel::new(k.store().clone(), k.shared_clock());
    restarted
        .register_job(handler("test.count", |_| Behaviour::Count(3)))
        .expect("register");
    let workers = jobs::start(&restarted, 1).await.expect("start");
    let after = crate::tests::Fixture {
        _dir: tempfile::tempdir().expect("tempdir"),
        kernel: restarted.clone(),
        company: f.company,
        admin: f.admin.clone(),
    };
    let done = wait_job(&after, &clock, id, JobState::Done).await;
    assert_eq!(done.attempts, 2, "run again after the restart");

    // Built-in schedules exist, run when due, and only administrators change them.
    let schedules = restarted.schedules().expect("schedules");
    assert!(
        schedules
            .iter()
            .any(|s| s.name == "prune-idempotency-keys" && s.enabled)
    );
    clock.advance(time::Duration::days(2));
    assert_eq!(restarted.run_due_schedules().await.expect("due"), 2);
    assert_eq!(restarted.run_due_schedules().await.expect("not again"), 0);
    let e = restarted
        .set_schedule(&f.admin, "prune-finished-jobs", 10, true)
        .await
        .expect_err("too often");
    assert!(
        format!("{e:?}").contains("every 60 s at the most often"),
        "{e:?}"
    );
    let head = restarted.log_head();
    let s = restarted
        .set_schedule(&f.admin, "prune-finished-jobs", 7200, false)
        .await
        .expect("change");
    assert_eq!((s.every_secs, s.enabled), (7200, false));
    // The change is in the audit trail, with who, before and after.
    let events = restarted.events_since(head, 10).expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!((e.entity.as_str(), e.actor), ("schedule", f.admin.user_id));
    assert_eq!(
        e.after
            .as_ref()
            .map(|a| (a["every_secs"].clone(), a["enabled"].clone())),
        Some((7200.into(), false.into()))
    );
    assert_ne!(e.before, e.after);
    restarted.verify_audit().expect("the chain still verifies");
    // The same settings again change nothing and add nothing.
    let head = restarted.log_head();
    restarted
        .set_schedule(&f.admin, "prune-finished-jobs", 7200, false)
        .await
        .expect("same");
    assert_eq!(restarted.log_head(), head);
    assert!(
        restarted
            .set_schedule(&f.admin, "no-such", 3600, true)
            .await
            .is_err()
    );
    for w in workers {
        w.abort();
    }
}
