//! Toasts: short messages after an action, swapped out-of-band into `#toasts`.

use maud::{Markup, Render, html};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToastKind {
    Success,
    Error,
    Info,
}

#[derive(Debug, Clone)]
pub struct Toast {
    pub kind: ToastKind,
    pub message: String,
}

impl Toast {
    pub fn success(message: impl Into<String>) -> Toast {
        Toast {
            kind: ToastKind::Success,
            message: message.into(),
        }
    }
    pub fn error(message: impl Into<String>) -> Toast {
        Toast {
            kind: ToastKind::Error,
            message: message.into(),
        }
    }

    /// The toast as an out-of-band fragment for an htmx response.
    pub fn oob_partial(&self) -> Markup {
        html! { div #toasts hx-swap-oob="beforeend" { (self) } }
    }
}

impl Render for Toast {
    fn render(&self) -> Markup {
        let class = match self.kind {
            ToastKind::Success => "toast toast-success",
            ToastKind::Error => "toast toast-error",
            ToastKind::Info => "toast toast-info",
        };
        let role = if self.kind == ToastKind::Error {
            "alert"
        } else {
            "status"
        };
        html! { div class=(class) role=(role) { (self.message) } }
    }
}
