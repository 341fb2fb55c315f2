//! The page shell: header, module navigation, content, toasts.

use maud::{DOCTYPE, Markup, Render, html};

use crate::assets;
use crate::toast::Toast;

/// One entry of the module navigation (the web layer builds the list for the user
/// signed in: only what they may open).
#[derive(Debug, Clone)]
pub struct NavItem {
    pub key: &'static str,
    pub label: &'static str,
    pub href: &'static str,
    /// One-letter icon (no icon font, no extra request).
    pub glyph: &'static str,
    pub children: Vec<(&'static str, &'static str)>,
    /// Shown as "coming" until the module lands.
    pub ready: bool,
}

/// Who is signed in, for the header.
#[derive(Debug, Clone)]
pub struct UserBadge {
    pub name: String,
    pub company: String,
    pub role: String,
    /// The company worked in now.
    pub company_id: u64,
    /// The companies the user may switch to, (id, name); a switcher shows when there
    /// are several.
    pub companies: Vec<(u64, String)>,
}

/// A full HTML page.
pub struct Page<'a> {
    pub title: &'a str,
    /// The `key` of the active module.
    pub active: &'a str,
    pub user: Option<&'a UserBadge>,
    /// The session's CSRF token; htmx sends it on every request.
    pub csrf: Option<&'a str>,
    /// The navigation the user may open.
    pub nav: &'a [NavItem],
    pub body: Markup,
    pub toasts: Vec<Toast>,
}

impl Page<'_> {
    fn head(&self) -> Markup {
        html! {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=r#"{"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"409","swap":true},{"code":"422","swap":true},{"code":"[45]..","swap":false,"error":true}],"defaultSwapStyle":"outerHTML","includeIndicatorStyles":false}"#;
                title { (self.title) " · NexusAI" }
                link rel="stylesheet" href=(assets::APP_CSS.path);
                script src=(assets::HTMX.path) defer {}
                script src=(assets::APP_JS.path) defer {}
            }
        }
    }

    fn nav(&self) -> Markup {
        html! {
            nav .sidebar aria-label="Modules" {
                a .brand href="/" { span .brand-mark { "N" } span { "NexusAI" } }
                ul {
                    @for m in self.nav {
                        @let active = m.key == self.active;
                        li .active[active] {
                            a href=(m.href) aria-current=[active.then_some("page")] {
                                span .glyph aria-hidden="true" { (m.glyph) }
                                span .label { (m.label) }
                                @if !m.ready { span .soon { "coming" } }
                            }
                            @if active && !m.children.is_empty() {
                                ul .sub {
                                    @for (label, href) in &m.children {
                                        li { a href=(href) { (label) } }
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

impl Render for Page<'_> {
    fn render(&self) -> Markup {
        let headers = self.csrf.map(|t| format!(r#"{{"X-CSRF-Token": "{t}"}}"#));
        html! {
            (DOCTYPE)
            html lang="en" {
                (self.head())
                body hx-headers=[headers] data-csrf=[self.csrf] {
                    @if let Some(user) = self.user {
                        div .shell {
                            (self.nav())
                            div .main {
                                header .topbar {
                                    form .search action="/search" method="get" role="search" {
                                        input #global-search type="search" name="q" placeholder="Search or jump to…   ( / or Ctrl-K )" aria-label="Search records, pages and actions" autocomplete="off" maxlength="500"
                                            role="combobox" aria-controls="search-suggest" aria-expanded="false" aria-autocomplete="list"
                                            hx-get="/search/suggest" hx-trigger="input changed delay:120ms, search" hx-target="#search-suggest" hx-swap="innerHTML" hx-sync="this:replace";
                                        div #search-suggest .suggest {}
                                    }
                                    div .who {
                                        @if user.companies.len() > 1 {
                                            form .company-switch method="post" action="/session/company" {
                                                @if let Some(t) = self.csrf { input type="hidden" name="_csrf" value=(t); }
                                                label .visually-hidden for="company-switch" { "Company" }
                                                select #company-switch name="company" data-autosubmit title="Switch company" {
                                                    @for (id, name) in &user.companies {
                                                        option value=(id) selected[*id == user.company_id] { (name) }
                                                    }
                                                }
                                                noscript { button .link type="submit" { "Switch" } }
                                            }
                                        } @else {
                                            span .company { (user.company) }
                                        }
                                        a .user href="/account/security" title={ (user.role) " · security, tokens, sessions" } { (user.name) }
                                        form method="post" action="/logout" {
                                            @if let Some(t) = self.csrf { input type="hidden" name="_csrf" value=(t); }
                                            button .link type="submit" { "Sign out" }
                                        }
                                    }
                                }
                                main #content { (self.body) }
                            }
                        }
                    } @else {
                        main .bare { (self.body) }
                    }
                    div #toasts aria-live="polite" {
                        @for t in &self.toasts { (t) }
                    }
                    noscript { div .noscript { "JavaScript is off: pages still work, without live updates." } }
                }
            }
        }
    }
}
