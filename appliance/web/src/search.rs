//! Search: the page (`/search`), the top bar's instant results and command palette
//! (`/search/suggest`), and `GET /api/v1/search` — one query through the full-text
//! index for all three, so a script sees the hits a person sees.

use axum::Json;
use axum::extract::{RawQuery, State};
use maud::{Markup, html};
use nexus_kernel::{Action, Creation, Principal, registry};
use nexus_search::{FoundBy, Fragment, Retrieval, SearchError, SearchRequest, SearchResults};
use serde::Deserialize;
use serde_json::{Value as J, json};

use crate::error::WebError;
use crate::session::Auth;
use crate::{AppState, views};

/// How many hits the search page shows; the top bar shows fewer.
const PAGE_HITS: usize = 50;
const SUGGEST_HITS: usize = 8;
/// Pages and actions the palette shows at most.
const PALETTE_ENTRIES: usize = 6;

#[derive(Debug, Default, Deserialize)]
struct Params {
    #[serde(default)]
    q: String,
    /// Entity names, comma-separated.
    #[serde(default)]
    entity: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    limit: Option<usize>,
    /// `text`, `vector` or `hybrid`; empty: the view's own.
    #[serde(default)]
    mode: String,
}

impl Params {
    fn parse(raw: Option<&str>) -> Result<Params, WebError> {
        serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|e| WebError::Malformed(format!("the search parameters cannot be read: {e}")))
    }

    fn request(
        &self,
        default_limit: usize,
        retrieval: Retrieval,
    ) -> Result<SearchRequest, WebError> {
        let date = |name: &str, v: &str| -> Result<Option<time::Date>, WebError> {
            if v.trim().is_empty() {
                return Ok(None);
            }
            nexus_kernel::parse_date(v)
                .map(Some)
                .map_err(|e| WebError::Malformed(format!("{name}: {e}")))
        };
        let entities: Vec<String> = self
            .entity
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        for e in &entities {
            if registry::entity(e).is_none() {
                return Err(WebError::Malformed(format!(
                    "entity: there is no entity called {e:?}"
                )));
            }
        }
        let retrieval = match self.mode.trim() {
            "" => retrieval,
            m => Retrieval::parse(m).ok_or_else(|| {
                WebError::Malformed(format!("mode: use text, vector or hybrid (not {m:?})"))
            })?,
        };
        let limit = self.limit.unwrap_or(default_limit);
        if !(1..=100).contains(&limit) {
            return Err(WebError::Malformed("limit: use 1 to 100".into()));
        }
        Ok(SearchRequest {
            text: self.q.clone(),
            entities,
            from: date("from", &self.from)?,
            to: date("to", &self.to)?,
            limit,
            retrieval,
        })
    }
}

fn run(
    state: &AppState,
    who: &Principal,
    request: &SearchRequest,
) -> Result<SearchResults, WebError> {
    state.search.search(who, request).map_err(|e| match e {
        SearchError::Query(m) => WebError::Malformed(m),
        SearchError::Kernel(k) => WebError::Kernel(k),
        SearchError::Index(m) => WebError::SearchUnavailable(m),
    })
}

/// For a page: a search the reader's words or the index refused is a message shown
/// in place of the hits, not an error page.
fn shown(
    state: &AppState,
    who: &Principal,
    request: &SearchRequest,
) -> Result<(SearchResults, Option<String>), WebError> {
    match run(state, who, request) {
        Ok(r) => Ok((r, None)),
        Err(e @ (WebError::Malformed(_) | WebError::SearchUnavailable(_))) => {
            Ok((SearchResults::default(), Some(e.message())))
        }
        Err(e) => Err(e),
    }
}

fn fragments(parts: &[Fragment]) -> Markup {
    html! { @for p in parts { @if p.hit { mark { (p.text) } } @else { (p.text) } } }
}

/// `GET /search`: every hit the reader may read, grouped by entity, with the counts
/// as filters and a date range.
pub async fn page(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let params = Params::parse(raw.as_deref())?;
    let request = params.request(PAGE_HITS, Retrieval::Hybrid)?;
    let (results, problem) = shown(&state, auth.who(), &request)?;
    let q = &params.q;
    let filter_href = |entity: &str| {
        let mut s = format!("/search?q={}", nexus_ui::grid::encode(q));
        if !entity.is_empty() {
            s.push_str("&entity=");
            s.push_str(entity);
        }
        for (k, v) in [
            ("from", &params.from),
            ("to", &params.to),
            ("mode", &params.mode),
        ] {
            if !v.is_empty() {
                s.push_str(&format!("&{k}={}", nexus_ui::grid::encode(v)));
            }
        }
        s
    };
    let mut groups: Vec<(&'static nexus_kernel::EntityDef, Vec<&nexus_search::Hit>)> = Vec::new();
    for hit in &results.hits {
        match groups.iter_mut().find(|(d, _)| d.name == hit.entity.name) {
            Some((_, g)) => g.push(hit),
            None => groups.push((hit.entity, vec![hit])),
        }
    }
    let body = html! {
        header .page-head { h1 { "Search" } }
        form .filters method="get" action="/search" role="search" {
            input type="search" name="q" value=(q) autofocus data-shortcut="search" aria-label="Search for" maxlength="500";
            @if !params.entity.is_empty() { input type="hidden" name="entity" value=(params.entity); }
            label { "From " input type="date" name="from" value=(params.from); }
            label { "To " input type="date" name="to" value=(params.to); }
            button type="submit" { "Search" }
        }
        @if let Some(p) = &problem { p .error role="alert" { (p) } }
        @if !results.by_entity.is_empty() {
            nav .facets aria-label="Filter by kind" {
                a href=(filter_href("")) aria-current=[params.entity.is_empty().then_some("true")] { "All (" (results.total) ")" }
                @for (def, n) in &results.by_entity {
                    a href=(filter_href(def.name)) aria-current=[(params.entity == def.name).then_some("true")] { (def.plural) " (" (n) ")" }
                }
            }
        }
        @if problem.is_none() && results.hits.is_empty() && !q.trim().is_empty() {
            p { "Nothing found for “" (q) "”." }
        }
        @if results.some_words && !results.hits.is_empty() {
            p .muted { "Records with some of your words, those with more of the rarer ones first." }
        }
        @for (def, hits) in &groups {
            section .card .spaced {
                h2 { (def.plural) }
                ul .hits {
                    @for h in hits {
                        li {
                            a href=(h.url()) { (fragments(&h.title)) }
                            @if let Some(d) = &h.document {
                                " " span .muted { "document" @if !d.locator.is_empty() { " · " (d.locator) } }
                            }
                            @if let Some(d) = h.date { " " span .muted { (nexus_kernel::format_date(d)) } }
                            @if h.found_by == FoundBy::Meaning { " " span .badge title="Its words differ from yours; its meaning is close" { "similar meaning" } }
                            @if !h.snippet.is_empty() { div .snippet { (fragments(&h.snippet)) } }
                        }
                    }
                }
            }
        }
        @if results.total > results.hits.len() as u64 {
            p .muted { "Showing the best " (results.hits.len()) " of " (results.total) "; add a word or pick a kind to narrow it." }
        }
    };
    Ok(views::page(&auth, "Search", "", body, Vec::new()))
}

/// A page or an action the palette offers.
struct Entry {
    label: String,
    href: String,
}

/// The pages and actions whose words start with the reader's words ("trial",
/// "new inv"), among those the navigation offers them.
fn palette(who: &Principal, q: &str) -> Vec<Entry> {
    let words: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
    if words.is_empty() {
        return Vec::new();
    }
    let fits = |label: &str| {
        let label = label.to_lowercase();
        let have: Vec<&str> = label.split(|c: char| !c.is_alphanumeric()).collect();
        words
            .iter()
            .all(|w| have.iter().any(|h| h.starts_with(w.as_str())))
    };
    let mut out = Vec::new();
    for item in views::navigation(who).into_iter().filter(|i| i.ready) {
        if fits(item.label) {
            out.push(Entry {
                label: item.label.to_string(),
                href: item.href.to_string(),
            });
        }
        for (label, href) in item.children {
            let full = format!("{} › {label}", item.label);
            if fits(&full) {
                out.push(Entry {
                    label: full,
                    href: href.to_string(),
                });
            }
        }
    }
    for def in registry::entities()
        .filter(|d| d.creation == Creation::ByRole && who.can(d.name, Action::Create))
    {
        let label = format!("New {}", def.label.to_lowercase());
        if fits(&label) {
            out.push(Entry {
                label,
                href: format!("/e/{}/new", def.name),
            });
        }
    }
    out.dedup_by(|a, b| a.href == b.href);
    out.truncate(PALETTE_ENTRIES);
    out
}

/// `GET /search/suggest?q=`: the top bar's dropdown — pages and actions, then the best
/// records — as the reader types.
pub async fn suggest(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Markup, WebError> {
    let params = Params::parse(raw.as_deref())?;
    if params.q.trim().is_empty() {
        return Ok(html! {});
    }
    // As the reader types: words and prefixes (a half-typed word means nothing yet).
    let request = params.request(SUGGEST_HITS, Retrieval::Text)?;
    let entries = palette(auth.who(), &params.q);
    let (results, problem) = shown(&state, auth.who(), &request)?;
    Ok(html! {
        div .suggest-list role="listbox" aria-label="Suggestions" {
            @if let Some(p) = &problem { p .error { (p) } }
            @if !entries.is_empty() {
                p .suggest-head { "Go to" }
                @for e in &entries { a .suggest-item role="option" href=(e.href) { (e.label) } }
            }
            @if !results.hits.is_empty() {
                p .suggest-head { "Records" }
                @for h in &results.hits {
                    a .suggest-item role="option" href=(h.url()) {
                        span .suggest-kind { @if h.document.is_some() { "Document" } @else { (h.entity.label) } }
                        " " (fragments(&h.title))
                        @if !h.snippet.is_empty() { span .snippet { " — " (fragments(&h.snippet)) } }
                    }
                }
            }
            @if entries.is_empty() && results.hits.is_empty() && problem.is_none() {
                p .muted { "Nothing found for “" (params.q) "”." }
            }
            a .suggest-item .suggest-all role="option" href={ "/search?q=" (nexus_ui::grid::encode(&params.q)) } {
                "All results for “" (params.q) "” (" (results.total) ")"
            }
        }
    })
}

/// `GET /api/v1/search?q=&entity=&from=&to=&limit=`: the hits the search page shows.
pub async fn api(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> Result<Json<J>, WebError> {
    let params = Params::parse(raw.as_deref())?;
    let request = params.request(20, Retrieval::Hybrid)?;
    let results = run(&state, auth.who(), &request)?;
    let vectors = state.search.vectors().is_some();
    let retrieval = match request.retrieval {
        Retrieval::Text => "text",
        Retrieval::Vector if vectors => "vector",
        Retrieval::Hybrid if vectors => "hybrid",
        _ => "text",
    };
    Ok(Json(json!({
        "query": params.q,
        "retrieval": retrieval,
        "total": results.total,
        "some_words": results.some_words,
        "by_entity": results.by_entity.iter().map(|(d, n)| json!({
            "entity": d.name, "label": d.plural, "count": n,
        })).collect::<Vec<_>>(),
        "hits": results.hits.iter().map(|h| json!({
            "entity": h.entity.name,
            "id": h.record,
            "title": h.title_text(),
            "url": h.url(),
            "date": h.date.map(nexus_kernel::format_date),
            "score": h.score,
            "found_by": h.found_by,
            "similarity": h.similarity,
            "title_fragments": h.title,
            "snippet": h.snippet,
            "document": h.document.as_ref().map(|d| json!({
                "id": d.id, "locator": d.locator, "page": d.page,
            })),
        })).collect::<Vec<_>>(),
    })))
}

/// The job that rebuilds the search index from the store while the appliance runs.
pub const REINDEX_KIND: &str = "web.reindex_search";

/// Rebuilds the index from one snapshot of the store (searches keep the old entries
/// until it commits; the indexer then goes on from the snapshot's head), reporting
/// the records visited against those the store holds.
struct Reindex(std::sync::Arc<nexus_search::SearchIndex>);

impl nexus_kernel::JobHandler for Reindex {
    fn kind(&self) -> &'static str {
        REINDEX_KIND
    }

    fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(6 * 3600)
    }

    fn run(&self, ctx: nexus_kernel::JobContext) -> nexus_kernel::JobFuture<'_> {
        use std::sync::atomic::{AtomicU64, Ordering};
        Box::pin(async move {
            let retry = |e: &dyn std::fmt::Display| nexus_kernel::JobError::Retry(e.to_string());
            let total = ctx.kernel.record_total().map_err(|e| retry(&e))?;
            let done = std::sync::Arc::new(AtomicU64::new(0));
            let (index, kernel, seen) = (self.0.clone(), ctx.kernel.clone(), done.clone());
            let mut work = tokio::task::spawn_blocking(move || {
                index.rebuild(&kernel, |n| seen.store(n, Ordering::Relaxed))
            });
            let added = loop {
                tokio::select! {
                    finished = &mut work => break finished.map_err(|e| retry(&e))?.map_err(|e| retry(&e))?,
                    () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                        let n = done.load(Ordering::Relaxed);
                        ctx.progress(n, total.max(n)).await?;
                    }
                }
            };
            let n = done.load(Ordering::Relaxed);
            ctx.progress(n, n).await?;
            Ok(json!({ "records": n, "entries": added, "position": self.0.position() }))
        })
    }
}

/// Registers the rebuild job over `index`.
pub fn register(
    kernel: &nexus_kernel::Kernel,
    index: &std::sync::Arc<nexus_search::SearchIndex>,
) -> Result<(), nexus_kernel::KernelError> {
    kernel.register_job(std::sync::Arc::new(Reindex(index.clone())))
}

/// `POST /admin/search/rebuild`: starts the rebuild, shows its job's page.
pub async fn rebuild(
    State(state): State<AppState>,
    submit: crate::session::FormSubmit,
) -> Result<axum::response::Response, WebError> {
    crate::pages::require_admin_session(&submit.auth)?;
    let id = state
        .kernel
        .enqueue(
            submit.auth.who(),
            nexus_kernel::JobSpec::new(
                REINDEX_KIND,
                "Rebuild the search index",
                serde_json::Value::Null,
            ),
        )
        .await?;
    Ok(crate::records::redirect(
        submit.htmx,
        &format!("/jobs/{id}"),
    ))
}

/// The admin page's card: what the index holds and the rebuild button.
pub fn admin_card(state: &AppState, auth: &Auth) -> Markup {
    let head = state.kernel.log_head();
    let position = state.search.position();
    html! {
        div .card .spaced #search-index {
            h2 { "Search index" }
            p {
                (state.search.len().unwrap_or(0)) " entries (records and document passages), up to event "
                (position) @if head > position { " (" (head - position) " behind)" } "."
            }
            p .muted { "It is rebuilt from the records by itself when it is missing or damaged. Rebuild it here after restoring a backup or when results look wrong; searches go on meanwhile." }
            form method="post" action="/admin/search/rebuild" {
                input type="hidden" name="_csrf" value=(auth.csrf());
                button type="submit" { "Rebuild the search index" }
            }
        }
    }
}
