//! Any text as a search, by a signed-in user, against a real index of a few hundred
//! customers: it answers or refuses in words (`SearchError::Query`), never panics,
//! never returns more hits than asked, and every hit is one the index holds.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use nexus_kernel::{Input, Kernel, ManualClock, Principal};
use nexus_search::{SearchError, SearchIndex, SearchRequest};

struct World {
    index: SearchIndex,
    who: Principal,
    _kernel: Kernel,
    _dir: tempfile::TempDir,
}

/// Made once per process: a store, a company, an administrator, customers, the index.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        nexus_kernel::registry::install(&[&nexus_crm::CRM]).expect("modules");
        let dir = tempfile::tempdir().expect("dir");
        let store = nexus_store::Store::open(&dir.path().join("nexus.redb")).expect("store");
        let clock = Arc::new(ManualClock::new(time::macros::datetime!(2026-02-28 12:00 UTC)));
        let kernel = Kernel::new(store, clock);
        let who = rt.block_on(async {
            let company = kernel.create_company("Acme", "CHF").await.expect("company");
            let role = kernel.role_by_name(company, "Administrator").expect("role");
            let password = "correct horse battery staple";
            kernel
                .create_user(company, "ada", "Ada", password, role)
                .await
                .expect("user");
            let who = kernel.login("ada", password, None).await.expect("login").1.principal;
            let words = ["Alpine", "Coffee", "Roasters", "Zürich", "Steel", "Müller & Söhne",
                "Ölberg", "naïve", "東京", "O'Brien", "x-ray", "AG", "GmbH", "3M", "100%"];
            for i in 0..300usize {
                let name = format!("{} {} {i}", words[i % words.len()], words[(i * 7 + 3) % words.len()]);
                let input = Input::Form(vec![
                    ("name".into(), name),
                    ("status".into(), "Active".into()),
                ]);
                kernel.create(&who, &nexus_crm::CUSTOMER, input).await.expect("customer");
            }
            who
        });
        let index = SearchIndex::open(dir.path().join("search")).expect("index");
        loop {
            let batch = kernel.commands_since(index.position(), 1000).expect("commands");
            if batch.is_empty() {
                break;
            }
            index.apply(&kernel, &batch).expect("apply");
        }
        World { index, who, _kernel: kernel, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let Some((&limit, text)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text).into_owned();
    let limit = usize::from(limit % 64);
    let request = SearchRequest {
        text,
        limit,
        ..Default::default()
    };
    match w.index.search(&w.who, &request) {
        Ok(found) => {
            assert!(found.hits.len() <= limit.max(1), "{} hits for {limit}", found.hits.len());
            assert!(found.total >= found.hits.len() as u64, "{} hits of {}", found.hits.len(), found.total);
        }
        Err(SearchError::Query(message)) => assert!(!message.is_empty()),
        Err(e) => panic!("{:?}: {e}", request.text),
    }
});
