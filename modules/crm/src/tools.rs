//! CRM's read-only tools for the assistant and the API.

use nexus_kernel::tools::{count_arg, text_arg};
use nexus_kernel::{KernelError, ListQuery, Param, ParamKind, Row, Tool};
use serde_json::{Value as J, json};

use crate::entities::{CONTACT, CUSTOMER, Contact, Customer};

/// The most records a tool answers with.
const MOST: u64 = 50;

pub static TOOLS: &[Tool] = &[Tool {
    name: "crm.find_customers",
    description: "Customers whose name, e-mail, city or country contains the text, with \
                  their status, credit limit and contacts.",
    params: &[
        Param {
            name: "query",
            kind: ParamKind::Text,
            required: true,
            description: "text to look for, such as a name or a city",
        },
        Param {
            name: "limit",
            kind: ParamKind::Count,
            required: false,
            description: "how many customers at most (default 10, at most 50)",
        },
    ],
    reads: &[&CUSTOMER, &CONTACT],
    run: |kernel, who, args| {
        let query = text_arg(args, "query")
            .unwrap_or_default()
            .trim()
            .to_owned();
        let limit = count_arg(args, "limit").unwrap_or(10).min(MOST) as usize;
        let page = kernel.list(
            who,
            &CUSTOMER,
            &ListQuery {
                search: Some(query).filter(|q| !q.is_empty()),
                sort: Some("name".into()),
                limit,
                ..Default::default()
            },
        )?;
        let mut found = Vec::with_capacity(page.rows.len());
        for c in Row::<Customer>::all(&page.rows)? {
            let contacts = kernel.list(
                who,
                &CONTACT,
                &ListQuery {
                    filters: vec![("customer".into(), c.id.to_string())],
                    limit: 20,
                    ..Default::default()
                },
            )?;
            let contacts: Vec<J> = Row::<Contact>::all(&contacts.rows)?
                .into_iter()
                .map(|p| json!({ "name": p.name, "job_title": p.job_title, "email": p.email }))
                .collect();
            let mut customer = json!({
                "id": c.id,
                "name": c.name,
                "status": c.status.to_string(),
                "city": c.city,
                "country": c.country,
                "email": c.email,
                "contacts": contacts,
            });
            // A guarded field: only for those who may see it (absent, not "no limit").
            if CUSTOMER
                .field("credit_limit")
                .is_some_and(|f| who.sees(&CUSTOMER, f))
            {
                customer["credit_limit"] = json!(c.credit_limit.map(nexus_kernel::format_money));
            }
            found.push(customer);
        }
        Ok::<J, KernelError>(json!({ "total": page.total, "customers": found }))
    },
}];
