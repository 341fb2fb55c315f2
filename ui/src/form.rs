//! The form: labelled inputs with field-level errors, validated on the server.

use maud::{Markup, Render, html};

/// What kind of control a field gets.
#[derive(Debug, Clone)]
pub enum Input {
    /// `<input type=…>`: text, email, tel, number, date.
    Text {
        html_type: &'static str,
        inputmode: Option<&'static str>,
    },
    TextArea,
    /// A select; `options` are (value, label).
    Select {
        options: Vec<(String, String)>,
    },
    Checkbox,
    Password,
    /// Shown, not edited, and not sent (a value the appliance sets).
    Fixed,
}

impl Input {
    /// The bare control (also used by inline edits in the grid).
    pub fn control(
        &self,
        name: &str,
        value: &str,
        id: &str,
        invalid: bool,
        autofocus: bool,
    ) -> Markup {
        let described = invalid.then(|| format!("{id}-error"));
        let aria_invalid = invalid.then_some("true");
        html! {
            @match self {
                Input::Text { html_type, inputmode } => {
                    input #(id) type=(html_type) name=(name) value=(value) inputmode=[*inputmode]
                        aria-invalid=[aria_invalid] aria-describedby=[described.as_deref()] autofocus[autofocus];
                }
                Input::TextArea => {
                    textarea #(id) name=(name) rows="4" aria-invalid=[aria_invalid] aria-describedby=[described.as_deref()] autofocus[autofocus] { (value) }
                }
                Input::Select { options } => {
                    select #(id) name=(name) aria-invalid=[aria_invalid] aria-describedby=[described.as_deref()] autofocus[autofocus] {
                        option value="" { "—" }
                        @for (v, label) in options {
                            option value=(v) selected[v == value] { (label) }
                        }
                    }
                }
                Input::Checkbox => {
                    // The hidden "false" is sent when the box is unchecked; the last value wins.
                    input type="hidden" name=(name) value="false";
                    input #(id) type="checkbox" name=(name) value="true" checked[value == "Yes" || value == "true"]
                        aria-invalid=[aria_invalid] autofocus[autofocus];
                }
                Input::Fixed => {
                    div .value #(id) { (value) }
                }
                Input::Password => {
                    input #(id) type="password" name=(name) value="" autocomplete="new-password"
                        aria-invalid=[aria_invalid] aria-describedby=[described.as_deref()] autofocus[autofocus];
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct FormField {
    pub name: String,
    pub label: String,
    pub input: Input,
    pub value: String,
    pub required: bool,
    pub help: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Form {
    pub id: String,
    pub action: String,
    pub fields: Vec<FormField>,
    /// Hidden values (`version`, `_csrf`).
    pub hidden: Vec<(String, String)>,
    pub submit_label: String,
    /// A message about the form as a whole (e.g. a stale edit).
    pub error: Option<String>,
    pub cancel_href: Option<String>,
    /// Shown without inputs (no permission to edit).
    pub readonly: bool,
}

impl Render for Form {
    fn render(&self) -> Markup {
        html! {
            form #(self.id) .record-form method="post" action=(self.action)
                hx-post=(self.action) hx-target="this" hx-swap="outerHTML" novalidate {
                @if let Some(e) = &self.error {
                    div .form-error role="alert" { (e) }
                }
                @for (k, v) in &self.hidden {
                    input type="hidden" name=(k) value=(v);
                }
                div .fields {
                    @for f in &self.fields {
                        @let id = format!("f-{}", f.name);
                        div .field .invalid[f.error.is_some()] .wide[matches!(f.input, Input::TextArea)] {
                            label for=(id) {
                                (f.label)
                                @if f.required && !self.readonly { span .req title="required" { " *" } }
                            }
                            @if self.readonly {
                                div .value { (f.value) }
                            } @else {
                                (f.input.control(&f.name, &f.value, &id, f.error.is_some(), false))
                            }
                            @if let Some(e) = &f.error {
                                div .field-error #{ (id) "-error" } { (e) }
                            } @else if !f.help.is_empty() && !self.readonly {
                                div .help { (f.help) }
                            }
                        }
                    }
                }
                @if !self.readonly {
                    div .form-actions {
                        button .primary type="submit" { (self.submit_label) }
                        @if let Some(href) = &self.cancel_href { a .button href=(href) { "Cancel" } }
                    }
                }
            }
        }
    }
}
