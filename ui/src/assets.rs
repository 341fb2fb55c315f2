//! Static assets compiled into the binary. Names carry a version so they can be
//! cached forever.

pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

pub const HTMX: Asset = Asset {
    path: "/assets/htmx-2.0.11.min.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("../assets/htmx.min.js"),
};

pub const HTMX_LICENSE: Asset = Asset {
    path: "/assets/htmx-2.0.11.LICENSE.txt",
    content_type: "text/plain; charset=utf-8",
    body: include_bytes!("../assets/htmx.LICENSE"),
};

pub const APP_JS: Asset = Asset {
    path: concat!("/assets/app-", env!("CARGO_PKG_VERSION"), ".js"),
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("../assets/app.js"),
};

pub const APP_CSS: Asset = Asset {
    path: concat!("/assets/app-", env!("CARGO_PKG_VERSION"), ".css"),
    content_type: "text/css; charset=utf-8",
    body: include_bytes!("../assets/app.css"),
};

pub const ALL: [&Asset; 4] = [&HTMX, &HTMX_LICENSE, &APP_JS, &APP_CSS];

pub fn find(path: &str) -> Option<&'static Asset> {
    ALL.into_iter().find(|a| a.path == path)
}
