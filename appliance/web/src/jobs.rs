//! Jobs on the web: long exports run as jobs (a live progress bar, then a download
//! link), each job's page, the API to follow one, and the administrator's list of
//! queued, running, failed and scheduled work.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use nexus_kernel::{
    Action, FieldKind, Job, JobContext, JobError, JobFuture, JobHandler, JobSpec, JobState, Kernel,
    KernelError,
};
use serde_json::json;

use crate::AppState;
use crate::body::field;
use crate::error::WebError;
use crate::records::{csv_header, csv_record, is_htmx, list_query};
use crate::session::{ApiWrite, Auth, FormSubmit};
use crate::views;

/// The kind of the CSV export job.
pub const EXPORT_CSV: &str = "web.export_csv";
/// The kind of the spreadsheet (XLSX) export job.
pub const EXPORT_XLSX: &str = "web.export_xlsx";

/// What an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    fn kind(self) -> &'static str {
        match self {
            Format::Csv => EXPORT_CSV,
            Format::Xlsx => EXPORT_XLSX,
        }
    }

    fn of_kind(kind: &str) -> Option<Format> {
        [Format::Csv, Format::Xlsx]
            .into_iter()
            .find(|f| f.kind() == kind)
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Format::Csv => "CSV",
            Format::Xlsx => "XLSX",
        }
    }

    fn mime(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// The format a list's export address asks for (`format=xlsx`; CSV by default).
    fn requested(raw: Option<&str>) -> Result<Format, WebError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| WebError::Malformed(format!("the address could not be read: {e}")))?;
        match pairs
            .iter()
            .find(|(k, _)| k == "format")
            .map(|(_, v)| v.as_str())
        {
            None | Some("csv") => Ok(Format::Csv),
            Some("xlsx") => Ok(Format::Xlsx),
            Some(other) => Err(WebError::Malformed(format!(
                "format \"{other}\" should be csv or xlsx"
            ))),
        }
    }
}

/// Writes an entity's list (with the filters it was asked with) as a CSV or XLSX file
/// under the data directory's `exports/`, reporting progress per thousand rows.
pub struct Export {
    pub dir: PathBuf,
    pub format: Format,
}

impl Export {
    fn file(&self, job: u64) -> PathBuf {
        export_file(&self.dir, job, self.format)
    }
}

fn export_file(dir: &FsPath, job: u64, format: Format) -> PathBuf {
    dir.join(format!("job-{job}.{}", format.extension()))
}

impl JobHandler for Export {
    fn kind(&self) -> &'static str {
        self.format.kind()
    }

    fn run(&self, ctx: JobContext) -> JobFuture<'_> {
        Box::pin(async move {
            let entity = ctx.job.payload["entity"].as_str().unwrap_or_default();
            let def = ctx.kernel.entity(entity)?;
            let query = ctx.job.payload["query"].as_str().unwrap_or_default();
            let q = list_query(Some(query)).map_err(|e| JobError::Fail(e.to_string()))?;
            // Permissions as they are now: a user who lost the export grant gets nothing.
            let rows = ctx.kernel.export(&ctx.who, def, &q)?;
            let total = rows.len() as u64;
            let out = match self.format {
                Format::Csv => {
                    let mut out = String::with_capacity(rows.len() * 64);
                    csv_header(&mut out, def, &ctx.who);
                    for (i, r) in rows.iter().enumerate() {
                        csv_record(&mut out, def, &ctx.who, r);
                        if i % 1000 == 999 {
                            ctx.progress(i as u64 + 1, total).await?;
                            tokio::task::yield_now().await;
                        }
                    }
                    out.into_bytes()
                }
                Format::Xlsx => {
                    let mut report = spreadsheet(def, &ctx.who);
                    for (i, r) in rows.iter().enumerate() {
                        report.rows.push(spreadsheet_row(def, &ctx.who, r));
                        if i % 1000 == 999 {
                            ctx.progress(i as u64 + 1, total).await?;
                            tokio::task::yield_now().await;
                        }
                    }
                    fit_columns(&mut report);
                    let now = nexus_kernel::Clock::now(ctx.kernel.clock());
                    // Building the workbook is CPU work: off the async workers.
                    tokio::task::spawn_blocking(move || nexus_export::to_xlsx(&report, now))
                        .await
                        .map_err(|e| JobError::Retry(format!("the spreadsheet: {e}")))?
                        .map_err(|e| JobError::Fail(format!("the spreadsheet: {e}")))?
                }
            };
            ctx.progress(total, total).await?;
            let path = self.file(ctx.job.id);
            let bytes = out.len() as u64;
            write_atomically(&self.dir, &path, out)
                .await
                .map_err(|e| JobError::Retry(format!("writing the export: {e}")))?;
            Ok(json!({ "rows": total, "bytes": bytes, "entity": def.name }))
        })
    }
}

/// Temp file, fsync, rename, fsync of the directory: the file is whole or absent.
async fn write_atomically(dir: &FsPath, path: &FsPath, bytes: Vec<u8>) -> std::io::Result<()> {
    let (dir, path) = (dir.to_path_buf(), path.to_path_buf());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        std::fs::create_dir_all(&dir)?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&dir)?.sync_all()
    })
    .await
    .map_err(std::io::Error::other)?
}

/// An entity's export as a spreadsheet: id, every stored field, version — the CSV's
/// columns, typed (money as numbers with two decimals, dates as dates).
fn spreadsheet(
    def: &nexus_kernel::EntityDef,
    who: &nexus_kernel::Principal,
) -> nexus_export::Report {
    let company = who.company_name.as_str();
    use nexus_export::{Align, Column, ColumnKind};
    let column = |header: &str, kind: ColumnKind| Column {
        header: header.to_owned(),
        align: match kind {
            ColumnKind::Text | ColumnKind::Date => Align::Left,
            _ => Align::Right,
        },
        kind,
    };
    let columns = std::iter::once(column("id", ColumnKind::Integer))
        .chain(
            def.fields
                .iter()
                .filter(|f| f.stored() && who.sees(def, f))
                .map(|f| {
                    let kind = match f.kind {
                        FieldKind::Money => ColumnKind::Money { exponent: 2 },
                        FieldKind::Int { .. } | FieldKind::Ref(_) => ColumnKind::Integer,
                        FieldKind::Date => ColumnKind::Date,
                        _ => ColumnKind::Text,
                    };
                    column(f.name, kind)
                }),
        )
        .chain([column("version", ColumnKind::Integer)])
        .collect();
    nexus_export::Report {
        title: def.plural.to_owned(),
        subtitle: nexus_export::Subtitle {
            company: company.to_owned(),
            ..Default::default()
        },
        columns,
        rows: Vec::new(),
        footer: None,
    }
}

/// A typed column holding a value that does not fit it (a record written by another
/// version, a date before 1900) becomes a text column, every cell as the CSV shows it:
/// the export goes on rather than failing on one record.
fn fit_columns(report: &mut nexus_export::Report) {
    use nexus_export::{Cell, ColumnKind};
    for (i, column) in report.columns.iter_mut().enumerate() {
        if column.kind == ColumnKind::Text
            || !report
                .rows
                .iter()
                .any(|r| matches!(r.cells.get(i), Some(Cell::Text(_))))
        {
            continue;
        }
        column.kind = ColumnKind::Text;
        for row in &mut report.rows {
            if let Some(cell) = row.cells.get_mut(i) {
                let text = match cell {
                    Cell::Money(m) => nexus_kernel::format_money(*m),
                    Cell::Integer(n) => n.to_string(),
                    Cell::Date(d) => nexus_kernel::format_date(*d),
                    Cell::Text(_) | Cell::Empty => continue,
                };
                *cell = Cell::Text(text);
            }
        }
    }
}

fn spreadsheet_row(
    def: &nexus_kernel::EntityDef,
    who: &nexus_kernel::Principal,
    r: &nexus_kernel::Record,
) -> nexus_export::Row {
    use nexus_export::Cell;
    use nexus_kernel::Value;
    let as_int = |n: u64| Cell::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let cells = std::iter::once(as_int(r.id))
        .chain(
            def.fields
                .iter()
                .filter(|f| f.stored() && who.sees(def, f))
                .map(|f| {
                    match (f.kind, r.get(f.name)) {
                        (_, Value::Empty) => Cell::Empty,
                        (FieldKind::Money, Value::Money(m)) => Cell::Money(*m),
                        (FieldKind::Int { .. }, Value::Int(n)) => Cell::Integer(*n),
                        (FieldKind::Ref(_), Value::Ref(id)) => as_int(*id),
                        // Spreadsheets count days from 1900: an earlier date is text (and
                        // so is its column, see `fit_columns`).
                        (FieldKind::Date, Value::Date(d)) if d.year() >= 1900 => Cell::Date(*d),
                        (_, Value::Bool(b)) => Cell::Text(if *b { "yes" } else { "no" }.to_owned()),
                        (_, other) => Cell::Text(other.display()),
                    }
                }),
        )
        .chain([as_int(r.version)])
        .collect();
    nexus_export::Row::new(cells)
}

/// Registers the web layer's job handlers; exports go under `data_dir/exports`.
pub fn register(kernel: &Kernel, data_dir: &FsPath) -> Result<(), KernelError> {
    for format in [Format::Csv, Format::Xlsx] {
        kernel.register_job(Arc::new(Export {
            dir: exports_dir(data_dir),
            format,
        }))?;
    }
    Ok(())
}

fn exports_dir(data_dir: &FsPath) -> PathBuf {
    data_dir.join("exports")
}

/// The export job `raw` asks for, once the user may export `entity` and the query
/// and format are understood (refused now, not in the job).
fn export_spec(
    kernel: &Kernel,
    who: &nexus_kernel::Principal,
    entity: &str,
    raw: Option<&str>,
) -> Result<JobSpec, WebError> {
    let def = kernel.entity(entity)?;
    kernel.authorize(who, def, Action::Read)?;
    kernel.authorize(who, def, Action::Export)?;
    list_query(raw)?;
    let format = Format::requested(raw)?;
    let mut spec = JobSpec::new(
        format.kind(),
        format!("Export {} as {}", def.plural.to_lowercase(), format.label()),
        json!({ "entity": def.name, "query": raw.unwrap_or("") }),
    );
    spec.export = Some((
        def.name.to_string(),
        json!({ "format": format.label(), "query": raw.unwrap_or("") }),
    ));
    Ok(spec)
}

/// `POST /e/{entity}/export`: starts the export, shows its page.
pub async fn start_export(
    State(state): State<AppState>,
    Path(entity): Path<String>,
    RawQuery(raw): RawQuery,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let who = submit.auth.who();
    let spec = export_spec(&state.kernel, who, &entity, raw.as_deref())?;
    let id = state.kernel.enqueue(who, spec).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}

/// `POST /api/v1/{entity}/export`: 202 with the job; follow it at its `Location`.
pub async fn api_start_export(
    State(state): State<AppState>,
    Path(entity): Path<String>,
    RawQuery(raw): RawQuery,
    ApiWrite(auth): ApiWrite,
) -> Result<Response, WebError> {
    let who = auth.who();
    let spec = export_spec(&state.kernel, who, &entity, raw.as_deref())?;
    let id = state.kernel.enqueue(who, spec).await?;
    let job = state.kernel.job(who, id)?;
    let mut res = (StatusCode::ACCEPTED, Json(job_json(&job))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/jobs/{id}")) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

fn parse_id(raw: &str) -> Result<u64, WebError> {
    raw.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| WebError::Malformed(format!("\"{raw}\" is not a job id")))
}

/// A job as the API shows it.
pub fn job_json(job: &Job) -> serde_json::Value {
    let download = (job.state == JobState::Done && Format::of_kind(&job.kind).is_some())
        .then(|| format!("/jobs/{}/download", job.id));
    json!({
        "id": job.id,
        "kind": job.kind,
        "title": job.title,
        "state": job.state.as_str(),
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "progress": job.progress.map(|(done, total)| json!({ "done": done, "total": total })),
        "error": job.error,
        "result": job.result,
        "download": download,
        "created_at": nexus_kernel::rfc3339_ms(job.created_ms),
        "updated_at": nexus_kernel::rfc3339_ms(job.updated_ms),
    })
}

/// `GET /api/v1/jobs/{id}`.
pub async fn api_job(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, WebError> {
    let job = state.kernel.job(auth.who(), parse_id(&id)?)?;
    Ok(Json(job_json(&job)))
}

/// `GET /api/v1/jobs`: the newest 100 the user may see.
pub async fn api_jobs(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<serde_json::Value>, WebError> {
    let jobs = state.kernel.jobs(auth.who(), 100)?;
    Ok(Json(
        json!({ "data": jobs.iter().map(job_json).collect::<Vec<_>>() }),
    ))
}

/// `POST /api/v1/jobs/{id}/cancel`.
pub async fn api_cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiWrite(auth): ApiWrite,
) -> Result<Json<serde_json::Value>, WebError> {
    let job = state.kernel.cancel_job(auth.who(), parse_id(&id)?).await?;
    Ok(Json(job_json(&job)))
}

/// The live part of a job's page: state, progress bar, error, download link. While
/// the job is queued or running it asks again every half second.
fn status_partial(job: &Job, csrf: &str) -> Markup {
    let live = !job.state.finished();
    let (done, total) = job.progress.unwrap_or((0, 0));
    html! {
        div #job-status .card .spaced data-state=(job.state.as_str())
            hx-get=[live.then(|| format!("/jobs/{}/status", job.id))]
            hx-trigger=[live.then_some("every 500ms")] hx-swap="outerHTML" {
            p { strong { (job.state.as_str()) } @if job.attempts > 1 { " (attempt " (job.attempts) " of " (job.max_attempts) ")" } }
            @if live || total > 0 {
                progress max=(total.max(1)) value=(done) { (done) " of " (total) }
                p .meta { (done) " of " (total) }
            }
            @if let Some(e) = &job.error { p .error { (e) } }
            @if let (JobState::Done, Some(format)) = (job.state, Format::of_kind(&job.kind)) {
                a .button .primary href={ "/jobs/" (job.id) "/download" } download { "Download " (format.label()) }
            }
            @if live {
                form .inline method="post" action={ "/jobs/" (job.id) "/cancel" } {
                    input type="hidden" name="_csrf" value=(csrf);
                    button .danger type="submit" { "Cancel" }
                }
            }
        }
    }
}

/// `GET /jobs/{id}`.
pub async fn job_page(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let job = state.kernel.job(auth.who(), parse_id(&id)?)?;
    let body = html! {
        header .page-head { div { a href="/jobs" { "← Jobs" } h1 { (job.title) } div .meta { "job #" (job.id) } } }
        (status_partial(&job, auth.csrf()))
    };
    Ok(views::page(&auth, &job.title, "admin", body, Vec::new()))
}

/// `GET /jobs/{id}/status` (htmx).
pub async fn job_status(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let job = state.kernel.job(auth.who(), parse_id(&id)?)?;
    if !is_htmx(&headers) {
        return Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response());
    }
    Ok(status_partial(&job, auth.csrf()).into_response())
}

/// `POST /jobs/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    let job = state
        .kernel
        .cancel_job(submit.auth.who(), parse_id(&id)?)
        .await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

/// `GET /jobs/{id}/download`: the finished export, to the user who asked for it (or
/// an administrator).
pub async fn download(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let job = state.kernel.job(auth.who(), parse_id(&id)?)?;
    let format = match (job.state, Format::of_kind(&job.kind)) {
        (JobState::Done, Some(format)) => format,
        _ => {
            return Err(KernelError::Conflict(format!(
                "job {} has no file to download (it is {})",
                job.id,
                job.state.as_str()
            ))
            .into());
        }
    };
    // The file holds records: whoever downloads it must read and export them now (a
    // narrower token, or a role lowered since the export ran, gets nothing).
    let exported = job
        .payload
        .get("entity")
        .and_then(|e| e.as_str())
        .unwrap_or_default();
    let def = state.kernel.entity(exported)?;
    state.kernel.authorize(auth.who(), def, Action::Read)?;
    state.kernel.authorize(auth.who(), def, Action::Export)?;
    let path = export_file(
        &exports_dir(FsPath::new(&state.info.data_dir)),
        job.id,
        format,
    );
    let bytes = tokio::fs::read(&path).await.map_err(|_| {
        KernelError::NotFound(format!("the file of job {} (it was removed)", job.id))
    })?;
    let entity = job
        .result
        .as_ref()
        .and_then(|r| r["entity"].as_str())
        .unwrap_or("export");
    let disposition = format!(
        "attachment; filename=\"{entity}-{}.{}\"",
        job.id,
        format.extension()
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.mime()),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn jobs_table(jobs: &[&Job]) -> Markup {
    html! {
        table .report {
            thead { tr { th { "Job" } th { "State" } th .num { "Attempts" } th { "Progress" } th { "Error" } th { "Updated" } } }
            tbody {
                @for j in jobs {
                    tr {
                        td { a href={ "/jobs/" (j.id) } { "#" (j.id) " " (j.title) } }
                        td { (j.state.as_str()) }
                        td .num { (j.attempts) " / " (j.max_attempts) }
                        td { @if let Some((d, t)) = j.progress { (d) " of " (t) } }
                        td { @if let Some(e) = &j.error { (e) } }
                        td { (nexus_kernel::rfc3339_ms(j.updated_ms)) }
                    }
                }
            }
        }
    }
}

/// `GET /jobs`: the user's jobs; for an administrator every job of the company, by
/// state, and the schedules with their edit forms.
pub async fn jobs_page(State(state): State<AppState>, auth: Auth) -> Result<Markup, WebError> {
    let who = auth.who();
    let jobs = state.kernel.jobs(who, 500)?;
    let of = |states: &[JobState]| -> Vec<&Job> {
        jobs.iter().filter(|j| states.contains(&j.state)).collect()
    };
    let schedules = if who.administers_box() {
        state.kernel.schedules()?
    } else {
        Vec::new()
    };
    let body = html! {
        header .page-head { h1 { "Jobs" } div .meta { "Exports and other long work run here, one after the other" } }
        @for (title, states) in [
            ("Running", &[JobState::Running][..]),
            ("Queued", &[JobState::Queued][..]),
            ("Failed", &[JobState::Failed][..]),
            ("Finished", &[JobState::Done, JobState::Cancelled][..]),
        ] {
            section .card .spaced #{ "jobs-" (title.to_lowercase()) } {
                h2 { (title) }
                @let list = of(states);
                @if list.is_empty() { p .meta { "None." } } @else { (jobs_table(&list)) }
            }
        }
        @if who.administers_box() {
            section .card .spaced #schedules {
                h2 { "Schedules" }
                table .report {
                    thead { tr { th { "Schedule" } th { "Next run" } th { "Every (seconds)" } th { "On" } th {} } }
                    tbody {
                        @for s in &schedules {
                            tr {
                                td { (s.title) div .meta { (s.name) } }
                                td { (nexus_kernel::rfc3339_ms(s.next_run_ms)) }
                                form method="post" action={ "/admin/schedules/" (s.name) } {
                                    td {
                                        input type="hidden" name="_csrf" value=(auth.csrf());
                                        input type="number" name="every_secs" min="60" max="2678400" required value=(s.every_secs);
                                    }
                                    td { input type="checkbox" name="enabled" value="on" checked[s.enabled]; }
                                    td { button type="submit" { "Save" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(views::page(&auth, "Jobs", "admin", body, Vec::new()))
}

/// `POST /admin/schedules/{name}` (administrators).
pub async fn set_schedule(
    State(state): State<AppState>,
    Path(name): Path<String>,
    submit: FormSubmit,
) -> Result<Response, WebError> {
    submit.auth.session_token("change schedules")?;
    let every = field(&submit.pairs, "every_secs").unwrap_or("");
    let every: u64 = every.trim().parse().map_err(|_| {
        KernelError::invalid(
            "every_secs",
            format!("\"{every}\" is not a number of seconds"),
        )
    })?;
    let enabled = field(&submit.pairs, "enabled").is_some();
    state
        .kernel
        .set_schedule(submit.auth.who(), &name, every, enabled)
        .await?;
    Ok(Redirect::to("/jobs#schedules").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_export::{Cell, ColumnKind, Row};

    #[test]
    fn a_column_with_a_value_that_does_not_fit_becomes_text() {
        let mut report = spreadsheet(
            &nexus_kernel::builtin::COMPANY,
            &nexus_kernel::Principal::system(1),
        );
        let n = report.columns.len();
        let typed: Vec<Cell> = report
            .columns
            .iter()
            .map(|c| match c.kind {
                ColumnKind::Integer => Cell::Integer(1),
                ColumnKind::Money { .. } => Cell::Money(100),
                ColumnKind::Date => Cell::Empty,
                ColumnKind::Text => Cell::Text("Acme".into()),
            })
            .collect();
        let mut odd = typed.clone();
        // The id column: a value that does not fit an integer column.
        odd[0] = Cell::Text("#7".into());
        report.rows = vec![Row::new(typed), Row::new(odd)];
        fit_columns(&mut report);
        assert_eq!(report.columns[0].kind, ColumnKind::Text);
        assert_eq!(report.rows[0].cells[0], Cell::Text("1".into()));
        assert_eq!(report.rows[1].cells[0], Cell::Text("#7".into()));
        // The version column kept its type: every value fits.
        assert_eq!(report.columns[n - 1].kind, ColumnKind::Integer);
        assert!(nexus_export::to_xlsx(&report, time::OffsetDateTime::UNIX_EPOCH).is_ok());
    }
}
