//! The authorization matrix, generated from the route table: every operation of the
//! OpenAPI document (which the server refuses to serve a JSON route without, and which
//! states each operation's `x-access`) × every default role, a role with almost
//! nothing, and another company's administrator × the company's own records and
//! another company's. Exactly the allowed set gets past authorization: an allowed
//! caller is never answered 401 or 403, a refused one always 403, and nobody ever
//! reads or changes another company's record. A new route without an `x-access`
//! fails here.

use std::collections::BTreeMap;

use nexus_kernel::Grants;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN, Api, boot};

/// An id no record has (writes aim here, so that running the matrix destroys nothing).
const NO_SUCH_ID: u64 = 999_999_999;

struct Caller {
    name: &'static str,
    api: Api,
    grants: Grants,
    box_admin: bool,
    /// Works in the other company (so every id of the first is another company's).
    elsewhere: bool,
}

async fn first_id(api: &Api, entity: &str) -> Option<u64> {
    let list = api.json(&format!("/api/v1/{entity}?limit=1")).await;
    list["data"][0]["id"].as_u64()
}

async fn send(api: &Api, method: &Method, path: &str) -> StatusCode {
    let mut req = api
        .client
        .request(method.clone(), api.url(path))
        .header("x-csrf-token", &api.csrf);
    if *method == Method::POST {
        req = req.json(&json!({}));
    } else if *method == Method::PATCH {
        req = req.json(&json!({ "version": 1 }));
    }
    req.send().await.expect("request").status()
}

fn role_grants(roles: &Value, name: &str) -> Grants {
    let text = roles["data"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == name))
        .and_then(|r| r["permissions"].as_str())
        .unwrap_or_else(|| panic!("role {name} in {roles}"));
    // Access to a route needs the grant on some records; a record rule (`@own`) then
    // decides which (its records answer 404 to others: checked in tests/it/access.rs).
    Grants::parse(&text.replace("@own", "")).expect("grants")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_exactly_the_roles_allowed_in_each_company() {
    let s = boot(3).await;
    let admin = s.admin().await;
    let res = admin
        .post(
            "/api/v1/role",
            &json!({ "name": "Almost nothing", "permissions": "company:r" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let roles = admin.json("/api/v1/role?limit=100").await;

    // The other company, its administrator and a record of each kind it has.
    let res = admin
        .post(
            "/api/v1/company",
            &json!({ "name": "Other GmbH", "currency": "EUR", "current_password": ADMIN.1 }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let other: u64 = res.json::<Value>().await.expect("json")["id"]
        .as_u64()
        .expect("id");
    let k = &s.running.kernel;
    let other_admin_role = k.role_by_name(other, "Administrator").expect("role");
    k.create_user(
        other,
        "olga",
        "Olga Other",
        "olga's long password",
        other_admin_role,
    )
    .await
    .expect("olga");
    let olga = s.api("olga", "olga's long password").await;
    let res = olga
        .post(
            "/api/v1/customer",
            &json!({ "name": "Other's Customer", "status": "Active" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let mut callers = vec![Caller {
        name: "Administrator",
        api: admin,
        grants: Grants::all(),
        box_admin: true,
        elsewhere: false,
    }];
    for (user, role) in [
        ("sal", "Sales"),
        ("vie", "Viewer"),
        ("acc", "Accountant"),
        ("rep", "Sales rep"),
        ("non", "Almost nothing"),
    ] {
        let password = s.add_user(user, role).await;
        callers.push(Caller {
            name: role,
            api: s.api(user, &password).await,
            grants: role_grants(&roles, role),
            box_admin: false,
            elsewhere: false,
        });
    }
    callers.push(Caller {
        name: "another company's Administrator",
        api: olga,
        grants: Grants::all(),
        box_admin: false,
        elsewhere: true,
    });
    let admin = &callers[0].api;

    let doc = admin.json("/api/v1/openapi.json").await;
    let tools: BTreeMap<String, Grants> = admin.json("/api/v1/tools").await["data"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| {
            let reads: Vec<String> = t["reads"]
                .as_array()
                .expect("reads")
                .iter()
                .map(|e| format!("{}:r", e.as_str().expect("entity")))
                .collect();
            (
                t["function"]["name"].as_str().expect("name").to_string(),
                Grants::parse(&reads.join(",")).expect("reads"),
            )
        })
        .collect();
    let mut own_ids: BTreeMap<String, Option<u64>> = BTreeMap::new();
    let mut other_ids: BTreeMap<String, Option<u64>> = BTreeMap::new();

    // Every operation, expanded into concrete requests: (method, path, access, and for a
    // real record's id whether it is the other company's).
    let mut requests: Vec<(Method, String, Value, Option<bool>)> = Vec::new();
    for (route, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if method == Method::OPTIONS || !op.is_object() {
                continue;
            }
            let access = op["x-access"].clone();
            assert!(
                !access.is_null(),
                "{method} {route} does not say who may call it (x-access)"
            );
            if route.contains("{name}") {
                for (tool, reads) in &tools {
                    let access = json!({ "tool": reads.to_string() });
                    requests.push((method.clone(), route.replace("{name}", tool), access, None));
                }
                continue;
            }
            if !route.contains("{id}") {
                requests.push((method.clone(), route.clone(), access, None));
                continue;
            }
            // The record routes of an entity, and the ledger's bank account route.
            let entity = route
                .strip_prefix("/api/v1/ledger/bank-accounts/")
                .map(|_| "bank_account".to_string())
                .or_else(|| {
                    let rest = route.strip_prefix("/api/v1/")?;
                    let name = rest.split('/').next()?;
                    nexus_kernel::registry::entity(name).map(|_| name.to_string())
                });
            let Some(entity) = entity else {
                // Jobs, sessions and tokens: the caller's own, by an id nobody has.
                requests.push((
                    method.clone(),
                    route.replace("{id}", "0000000000000001"),
                    access,
                    None,
                ));
                continue;
            };
            if !own_ids.contains_key(&entity) {
                own_ids.insert(entity.clone(), first_id(admin, &entity).await);
                other_ids.insert(
                    entity.clone(),
                    first_id(&callers.last().expect("olga").api, &entity).await,
                );
            }
            match own_ids[&entity].filter(|_| method == Method::GET) {
                Some(own) => requests.push((
                    method.clone(),
                    route.replace("{id}", &own.to_string()),
                    access.clone(),
                    Some(false),
                )),
                None => requests.push((
                    method.clone(),
                    route.replace("{id}", &NO_SUCH_ID.to_string()),
                    access.clone(),
                    None,
                )),
            }
            // Another company's record is aimed at by every method: none may touch it.
            if let Some(theirs) = other_ids[&entity] {
                requests.push((
                    method.clone(),
                    route.replace("{id}", &theirs.to_string()),
                    access,
                    Some(true),
                ));
            }
        }
    }
    // Signing out last, so that every other request has a session.
    requests
        .sort_by_key(|(m, p, _, _)| (*m == Method::DELETE && p == "/api/v1/session", p.clone()));
    assert!(requests.len() > 200, "{} requests", requests.len());

    let mut wrong = Vec::new();
    let mut checked = 0;
    for caller in &callers {
        for (method, path, access, record) in &requests {
            let anyone = access == "anyone";
            let allowed = match access {
                // A document's own routes: the kernel checks its record's grants (tests/it/
                // documents.rs); here the id is nobody's, so every caller is told "not found".
                Value::String(a) if a == "anyone" || a == "signed-in" || a == "attached" => true,
                Value::String(a) if a == "box-admin" => caller.box_admin,
                Value::Object(o) => {
                    let needs = o
                        .get("needs")
                        .or_else(|| o.get("tool"))
                        .and_then(Value::as_str)
                        .expect("needs");
                    caller
                        .grants
                        .excess(&Grants::parse(needs).expect("needs"))
                        .is_empty()
                }
                other => panic!("{method} {path}: unknown x-access {other}"),
            };
            // A real record of the company the caller does not work in.
            let foreign = record.is_some_and(|other| other != caller.elsewhere);
            let status = send(&caller.api, method, path).await;
            checked += 1;
            let fine = if status.is_server_error() {
                false
            } else if foreign {
                // Never read or changed: not found, or refused outright.
                status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN
            } else if anyone {
                // Signing in with nothing is refused as a sign-in, never forbidden.
                status != StatusCode::FORBIDDEN
            } else if allowed {
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN
            } else {
                status == StatusCode::FORBIDDEN
            };
            if !fine {
                wrong.push(format!(
                    "{:<32} {method:<6} {path:<55} allowed={allowed:<5} foreign={foreign:<5} → {status}",
                    caller.name
                ));
            }
        }
    }
    eprintln!(
        "authorization matrix: {checked} answers from {} callers",
        callers.len()
    );
    assert!(
        wrong.is_empty(),
        "{} of {checked} answers break the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
