//! From kernel definitions and records to UI models and pages. The only place that
//! knows both the kernel and the UI toolkit.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use maud::{Markup, html};
use nexus_kernel::{
    Action, EntityDef, Event, FieldErrors, FieldKind, Kernel, KernelError, Op, Principal, Record,
    Value, builtin,
};
use nexus_ui::{
    Cell, Column, ColumnFilter, Form, FormField, Grid, GridRow, Input, NavItem, Page, RowMode,
    Toast, UserBadge,
};

use crate::session::Auth;

/// How many options a reference select shows at most.
const REF_OPTIONS: usize = 500;

pub fn badge(session: &nexus_kernel::Session) -> UserBadge {
    let who = &session.principal;
    UserBadge {
        name: who.display_name.clone(),
        company: who.company_name.clone(),
        role: who.role_name.clone(),
        company_id: who.company,
        companies: session.companies().to_vec(),
    }
}

/// Modules that have not landed yet: shown as "coming" (key, label, glyph, page).
pub const COMING: &[(&str, &str, &str, &str)] = &[
    ("hr", "HR", "H", "/m/hr"),
    ("epm", "EPM", "E", "/m/epm"),
    ("projects", "Projects", "P", "/m/projects"),
    ("assistant", "Assistant", "A", "/m/assistant"),
];

/// The navigation `who` may open: home, each installed module's entries they hold
/// the grant for, the modules still to come, and the administration for
/// administrators.
pub fn navigation(who: &Principal) -> Vec<NavItem> {
    let item = |key, label, href, glyph, children: Vec<(&'static str, &'static str)>| NavItem {
        key,
        label,
        href,
        glyph,
        children,
        ready: true,
    };
    let mut nav = vec![item("home", "Home", "/", "⌂", Vec::new())];
    for m in crate::module::installed() {
        let children: Vec<_> = m.nav_for(who).map(|e| (e.label, e.href)).collect();
        if !children.is_empty() {
            nav.push(item(
                m.module.name,
                m.module.label,
                m.home,
                m.glyph,
                children,
            ));
        }
    }
    nav.extend(COMING.iter().map(|(key, label, glyph, href)| NavItem {
        key,
        label,
        href,
        glyph,
        children: Vec::new(),
        ready: false,
    }));
    if who.is_admin() {
        // The overview (certificate, audit chain, transparency log) is the box's.
        let mut pages = vec![
            ("Users", "/e/user"),
            ("Members", "/e/membership"),
            ("Roles", "/e/role"),
            ("Company", "/e/company"),
            ("Jobs", "/jobs"),
            ("Settings", "/e/setting"),
        ];
        let home = if who.administers_box() {
            pages.insert(0, ("Overview", "/admin"));
            "/admin"
        } else {
            "/e/user"
        };
        nav.push(item("admin", "Admin", home, "⚙", pages));
    }
    nav
}

/// A full page for a signed-in user.
pub fn page(auth: &Auth, title: &str, active: &str, body: Markup, toasts: Vec<Toast>) -> Markup {
    let badge = badge(&auth.session);
    let nav = navigation(auth.who());
    maud::Render::render(&Page {
        title,
        active,
        user: Some(&badge),
        csrf: Some(auth.csrf()),
        nav: &nav,
        body,
        toasts,
    })
}

/// A page without the shell (sign-in, setup, errors).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    maud::Render::render(&Page {
        title,
        active: "",
        user: None,
        csrf: None,
        nav: &[],
        body,
        toasts: Vec::new(),
    })
}

pub fn error_page(status: StatusCode, message: &str) -> Markup {
    bare_page(
        status.canonical_reason().unwrap_or("Error"),
        html! {
            div .card .login {
                h1 { (status.as_u16()) " · " (status.canonical_reason().unwrap_or("Error")) }
                p { (message) }
                p { a href="/" { "Back to the start page" } }
            }
        },
    )
}

pub fn module_of(def: &EntityDef) -> &'static str {
    def.module
}

// ---------------------------------------------------------------- grid

fn column(def: &EntityDef, name: &str) -> Option<Column> {
    let f = def.field(name)?;
    let filter = match f.kind {
        FieldKind::Choice(options) => {
            ColumnFilter::Choice(options.iter().map(|o| (*o).to_string()).collect())
        }
        FieldKind::Bool => ColumnFilter::Bool,
        FieldKind::Text { .. } | FieldKind::Email | FieldKind::Phone if f.indexed => {
            ColumnFilter::Text
        }
        _ => ColumnFilter::None,
    };
    Some(Column {
        name: f.name.to_string(),
        label: f.label.to_string(),
        sortable: f.indexed,
        numeric: matches!(f.kind, FieldKind::Money | FieldKind::Int { .. }),
        filter,
        editable: inline_editable(f.kind) && !f.by_appliance,
    })
}

fn inline_editable(kind: FieldKind) -> bool {
    !matches!(
        kind,
        FieldKind::Password | FieldKind::LongText | FieldKind::Ref(_) | FieldKind::Grants
    )
}

/// The list columns `who` sees (a guarded field they may not see is no column).
pub fn columns(def: &EntityDef, who: &Principal) -> Vec<Column> {
    def.list_fields()
        .filter(|f| who.sees(def, f))
        .filter_map(|f| column(def, f.name))
        .collect()
}

/// Titles of referenced records, per field, for a set of rows.
pub fn ref_titles(
    kernel: &Kernel,
    who: &Principal,
    def: &EntityDef,
    rows: &[Record],
) -> Result<BTreeMap<&'static str, BTreeMap<u64, String>>, KernelError> {
    let mut out = BTreeMap::new();
    for f in def.list_fields() {
        if let FieldKind::Ref(target) = f.kind
            && let Some(tdef) = builtin::entity(target)
        {
            let ids = rows.iter().filter_map(|r| r.get(f.name).as_ref_id());
            out.insert(f.name, kernel.titles(who, tdef, ids)?);
        }
    }
    Ok(out)
}

pub fn display(
    def: &EntityDef,
    field: &str,
    value: &Value,
    titles: &BTreeMap<&'static str, BTreeMap<u64, String>>,
) -> Cell {
    match (def.field(field).map(|f| f.kind), value) {
        (Some(FieldKind::Ref(target)), Value::Ref(id)) => Cell::Link {
            text: titles
                .get(field)
                .and_then(|t| t.get(id))
                .cloned()
                .unwrap_or_else(|| format!("#{id}")),
            href: format!("/e/{target}/{id}"),
        },
        _ => Cell::Text(value.display()),
    }
}

pub fn grid_row(
    def: &EntityDef,
    who: &Principal,
    rec: &Record,
    titles: &BTreeMap<&'static str, BTreeMap<u64, String>>,
) -> GridRow {
    GridRow {
        id: rec.id,
        version: rec.version,
        href: format!("/e/{}/{}", def.name, rec.id),
        cells: def
            .list_fields()
            .filter(|f| who.sees(def, f))
            .map(|f| display(def, f.name, rec.get(f.name), titles))
            .collect(),
        mode: RowMode::View,
    }
}

/// A grid model with nothing but the shape and permissions (rows are added by callers).
pub fn grid_shell(def: &EntityDef, who: &Principal) -> Grid {
    Grid {
        entity: def.name.to_string(),
        title: def.plural.to_string(),
        base: format!("/e/{}", def.name),
        columns: columns(def, who),
        rows: Vec::new(),
        sort: None,
        descending: false,
        search: String::new(),
        filters: Vec::new(),
        offset: 0,
        limit: 50,
        total: 0,
        can_create: who.can(def.name, Action::Create)
            && def.creation == nexus_kernel::Creation::ByRole,
        can_export: who.can(def.name, Action::Export),
        can_edit: who.can(def.name, Action::Write),
        csrf: String::new(),
    }
}

// ---------------------------------------------------------------- forms

fn input_for(kernel: &Kernel, who: &Principal, kind: FieldKind) -> Result<Input, KernelError> {
    Ok(match kind {
        FieldKind::LongText | FieldKind::Grants => Input::TextArea,
        FieldKind::Bool => Input::Checkbox,
        FieldKind::Password => Input::Password,
        FieldKind::Choice(options) => Input::Select {
            options: options
                .iter()
                .map(|o| ((*o).to_string(), (*o).to_string()))
                .collect(),
        },
        FieldKind::Ref(target) => {
            let tdef = kernel.entity(target)?;
            Input::Select {
                options: kernel
                    .ref_options(who, tdef, REF_OPTIONS)?
                    .into_iter()
                    .map(|(id, title)| (id.to_string(), title))
                    .collect(),
            }
        }
        FieldKind::Money => Input::Text {
            html_type: "text",
            inputmode: Some("decimal"),
        },
        FieldKind::Int { .. } => Input::Text {
            html_type: "text",
            inputmode: Some("numeric"),
        },
        other => Input::Text {
            html_type: other.input_type(),
            inputmode: None,
        },
    })
}

/// The value as a form shows it for editing.
fn edit_value(kind: FieldKind, v: &Value) -> String {
    match (kind, v) {
        (FieldKind::Ref(_), Value::Ref(id)) => id.to_string(),
        (FieldKind::Bool, Value::Bool(b)) => b.to_string(),
        (_, v) => v.display(),
    }
}

/// The inline-edit control for one cell.
pub fn cell_input(
    kernel: &Kernel,
    who: &Principal,
    def: &EntityDef,
    field: &str,
    rec: &Record,
) -> Result<(Input, String), KernelError> {
    let f = def
        .field(field)
        .filter(|f| f.list && inline_editable(f.kind) && !f.by_appliance && who.may_set(def, f))
        .ok_or_else(|| {
            KernelError::NotFound(format!(
                "{} has no field \"{field}\" to edit here",
                def.label
            ))
        })?;
    Ok((
        input_for(kernel, who, f.kind)?,
        edit_value(f.kind, rec.get(f.name)),
    ))
}

/// What a submitted form held, to show it again with its errors.
pub type Submitted<'a> = Option<&'a [(String, String)]>;

pub struct FormSpec<'a> {
    pub record: Option<&'a Record>,
    pub submitted: Submitted<'a>,
    pub errors: Option<&'a FieldErrors>,
    pub message: Option<String>,
}

pub fn record_form(
    kernel: &Kernel,
    auth: &Auth,
    def: &'static EntityDef,
    spec: FormSpec<'_>,
) -> Result<Form, KernelError> {
    let who = auth.who();
    let creating = spec.record.is_none();
    let readonly = !creating && !who.can(def.name, Action::Write);
    let mut fields = Vec::new();
    for f in def.fields {
        // A guarded field they may not see is no part of their form.
        if !who.sees(def, f) {
            continue;
        }
        let submitted = spec
            .submitted
            .and_then(|pairs| pairs.iter().rev().find(|(k, _)| k == f.name))
            .map(|(_, v)| v.clone());
        let value = match (submitted, spec.record) {
            (_, _) if f.kind == FieldKind::Password => String::new(),
            (Some(v), _) => v,
            (None, Some(r)) if readonly => display(
                def,
                f.name,
                r.get(f.name),
                &ref_titles(kernel, who, def, std::slice::from_ref(r))?,
            )
            .text_owned(),
            (None, Some(r)) => edit_value(f.kind, r.get(f.name)),
            (None, None) if f.kind == FieldKind::Bool && def.code == builtin::USER.code => {
                "true".into()
            }
            (None, None) => String::new(),
        };
        if readonly && f.kind == FieldKind::Password {
            continue;
        }
        // Written by the appliance, or guarded and theirs only to see: shown on a
        // saved record, never an input.
        if f.by_appliance || !who.may_set(def, f) {
            if let Some(r) = spec.record.filter(|r| !r.get(f.name).is_empty()) {
                fields.push(FormField {
                    name: f.name.to_string(),
                    label: f.label.to_string(),
                    input: Input::Fixed,
                    value: r.get(f.name).display(),
                    required: false,
                    help: f.help.to_string(),
                    error: None,
                });
            }
            continue;
        }
        let help = if !creating && f.kind == FieldKind::Password {
            format!("{} Leave empty to keep the current password.", f.help)
        } else {
            f.help.to_string()
        };
        fields.push(FormField {
            name: f.name.to_string(),
            label: f.label.to_string(),
            input: input_for(kernel, who, f.kind)?,
            value,
            required: f.required || (creating && f.kind == FieldKind::Password),
            help,
            error: spec.errors.and_then(|e| e.get(f.name)).map(str::to_string),
        });
    }
    // Changes of access (a new user, a password, a role, permissions) are confirmed
    // with the actor's own password; the kernel says when it is needed.
    let confirms = [
        builtin::USER.code,
        builtin::ROLE.code,
        builtin::MEMBERSHIP.code,
    ]
    .contains(&def.code)
        || (creating && def.code == builtin::COMPANY.code);
    if !readonly && confirms {
        fields.push(FormField {
            name: nexus_kernel::CONFIRM_PASSWORD.to_string(),
            label: "Your password".to_string(),
            input: Input::Password,
            value: String::new(),
            required: false,
            help: "To create a user or a company, give access, or change a password, a \
                   role or permissions: your own password, to confirm it is you."
                .to_string(),
            error: spec
                .errors
                .and_then(|e| e.get(nexus_kernel::CONFIRM_PASSWORD))
                .map(str::to_string),
        });
    }
    let mut hidden = vec![("_csrf".to_string(), auth.csrf().to_string())];
    let (action, submit_label, cancel) = match spec.record {
        Some(r) => {
            hidden.push(("version".into(), r.version.to_string()));
            (
                format!("/e/{}/{}", def.name, r.id),
                "Save".to_string(),
                None,
            )
        }
        None => (
            format!("/e/{}", def.name),
            format!("Create {}", def.label.to_lowercase()),
            Some(format!("/e/{}", def.name)),
        ),
    };
    Ok(Form {
        id: "record-form".into(),
        action,
        fields,
        hidden,
        submit_label,
        error: spec.message,
        cancel_href: cancel,
        readonly,
    })
}

trait CellText {
    fn text_owned(self) -> String;
}

impl CellText for Cell {
    fn text_owned(self) -> String {
        match self {
            Cell::Text(t) | Cell::Link { text: t, .. } => t,
        }
    }
}

// ---------------------------------------------------------------- history

fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .map(|t| {
            let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
            t.format(&fmt).unwrap_or_default()
        })
        .unwrap_or_default()
}

fn json_text(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => "—".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The record's history panel; live-updating (it refreshes when the record changes).
pub fn history_partial(
    def: &EntityDef,
    id: u64,
    version: u64,
    entries: &[Event],
    notice: Option<&str>,
) -> Markup {
    html! {
        section #history .card data-live-entity=(def.name) data-live-id=(id) data-version=(version)
            hx-get={ "/e/" (def.name) "/" (id) "/history?version=" (version) }
            hx-trigger=(nexus_ui::HxEvent::Changed.name()) hx-swap="outerHTML" hx-swap-oob="true" {
            h2 { "History" }
            @if let Some(n) = notice {
                div .notice role="status" { (n) " " a href={ "/e/" (def.name) "/" (id) } { "Reload" } }
            }
            ol .history {
                @for e in entries {
                    li {
                        div { strong { (e.actor_name) } " " (past_tense(e.op)) " · v" (e.version) }
                        div .when { (when(e.at_ms)) " · event #" (e.seq) }
                        @if e.op == Op::Update {
                            ul .diff {
                                @for f in e.changed_fields() {
                                    @let label = def.field(&f).map_or(f.as_str(), |d| d.label);
                                    li {
                                        (label) ": "
                                        del { (json_text(e.before.as_ref().and_then(|b| b.get(&f)))) }
                                        " → "
                                        ins { (json_text(e.after.as_ref().and_then(|a| a.get(&f)))) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn past_tense(op: Op) -> &'static str {
    match op {
        Op::Create => "created it",
        Op::Update => "changed it",
        Op::Delete => "deleted it",
    }
}
