//! Several companies on one box: an administrator creates one, gives users of other
//! companies access to it, they switch between them — and nothing crosses over that
//! the membership does not allow.

use super::*;
use crate::builtin::{COMPANY, MEMBERSHIP, ROLE, USER};
use crate::test_entities::CUSTOMER;
use crate::tests::{Fixture, fixture, form};

const ADA: &str = "correct horse battery";

fn all() -> ListQuery {
    ListQuery {
        limit: 100,
        ..ListQuery::default()
    }
}

fn with_password(pairs: &[(&str, &str)], password: &str) -> Input {
    let mut all: Vec<(&str, &str)> = pairs.to_vec();
    all.push((CONFIRM_PASSWORD, password));
    form(&all)
}

fn field_error(e: &KernelError, field: &str) -> String {
    match e {
        KernelError::Invalid(errors) => errors
            .get(field)
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no error on {field}: {errors:?}")),
        other => panic!("expected field errors, got {other:?}"),
    }
}

/// Ada (administrator of Acme) creates Beta and signs in; returns Beta's id and her
/// session token.
async fn beta(f: &Fixture) -> (u64, String) {
    let rec = f
        .kernel
        .create(
            &f.admin,
            &COMPANY,
            with_password(&[("name", "Beta GmbH"), ("currency", "EUR")], ADA),
        )
        .await
        .expect("create Beta");
    let (token, _) = f.kernel.login("ada", ADA, None).await.expect("login");
    (rec.id, token)
}

async fn user_with_role(f: &Fixture, who: &Principal, name: &str, grants: &str) -> u64 {
    let role = f
        .kernel
        .create(
            who,
            &ROLE,
            with_password(&[("name", name), ("permissions", grants)], ADA),
        )
        .await
        .expect("role");
    let user = f
        .kernel
        .create(
            who,
            &USER,
            with_password(
                &[
                    ("username", &name.to_lowercase()),
                    ("full_name", name),
                    ("role", &role.id.to_string()),
                    ("active", "true"),
                    ("password", "a long enough secret 7"),
                ],
                ADA,
            ),
        )
        .await
        .expect("user");
    user.id
}

#[tokio::test]
async fn only_a_full_administrator_creates_a_company_and_confirms_it() {
    let f = fixture().await;
    let input = || form(&[("name", "Beta GmbH"), ("currency", "EUR")]);
    let e = f
        .kernel
        .create(&f.admin, &COMPANY, input())
        .await
        .expect_err("unconfirmed");
    assert!(
        field_error(&e, CONFIRM_PASSWORD).contains("Creating a company needs your own password"),
        "{e}"
    );
    let e = f
        .kernel
        .create(
            &f.admin,
            &COMPANY,
            with_password(&[("name", "Beta GmbH"), ("currency", "EUR")], "wrong one"),
        )
        .await
        .expect_err("wrong password");
    assert_eq!(
        field_error(&e, CONFIRM_PASSWORD),
        "that is not your password"
    );
    // Someone who may create companies but not everything else cannot make one (its
    // creator would administer it).
    user_with_role(&f, &f.admin, "Founder", "company:rc, customer:rcw").await;
    let (_, founder) = f
        .kernel
        .login("founder", "a long enough secret 7", None)
        .await
        .expect("login");
    let e = f
        .kernel
        .create(
            &founder.principal,
            &COMPANY,
            with_password(
                &[("name", "Mine"), ("currency", "EUR")],
                "a long enough secret 7",
            ),
        )
        .await
        .expect_err("not a full administrator");
    assert!(matches!(e, KernelError::Forbidden { .. }), "{e:?}");
    assert_eq!(f.kernel.companies().expect("companies").len(), 1);

    let (b, token) = beta(&f).await;
    let names: Vec<String> = f
        .kernel
        .companies()
        .expect("companies")
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(names, ["Acme", "Beta GmbH"]);
    // Its creator may work in it, as its administrator (a membership, with the event).
    let session = f.kernel.session(&token).expect("session");
    assert_eq!(
        session.companies(),
        vec![
            (f.company, "Acme".to_string()),
            (b, "Beta GmbH".to_string())
        ]
    );
    let in_b = f.kernel.switch_company(&token, b).await.expect("switch");
    assert_eq!(in_b.principal.company, b);
    assert_eq!(in_b.principal.company_name, "Beta GmbH");
    assert_eq!(in_b.principal.home_company, f.company);
    assert_eq!(in_b.principal.role_name, "Administrator");
    assert!(in_b.principal.is_admin());
    let members = f
        .kernel
        .list(&in_b.principal, &MEMBERSHIP, &all())
        .expect("members");
    assert_eq!(members.total, 1);
    assert_eq!(members.rows[0].get("username"), &Value::Text("ada".into()));
    assert_eq!(members.rows[0].get("home"), &Value::Text("Acme".into()));
    let events = f.kernel.events_since(0, 10_000).expect("events");
    let made = events
        .iter()
        .find(|e| e.entity == "membership")
        .expect("membership event");
    assert_eq!((made.company, made.actor), (b, f.admin.user_id));
    // The new company has its own roles; Acme's are not its.
    let roles = f
        .kernel
        .list(&in_b.principal, &ROLE, &all())
        .expect("roles");
    assert!(roles.rows.iter().all(|r| r.company == b));
}

#[tokio::test]
async fn records_stay_in_their_company_across_a_switch() {
    let f = fixture().await;
    let (b, token) = beta(&f).await;
    let in_b = f.kernel.switch_company(&token, b).await.expect("switch");
    let theirs = f
        .kernel
        .create(
            &in_b.principal,
            &CUSTOMER,
            form(&[("name", "Only in Beta"), ("status", "Lead")]),
        )
        .await
        .expect("customer in Beta");
    assert_eq!(theirs.company, b);
    let in_a = f
        .kernel
        .switch_company(&token, f.company)
        .await
        .expect("back");
    let e = f
        .kernel
        .get(&in_a.principal, &CUSTOMER, theirs.id)
        .expect_err("not in Acme");
    assert!(matches!(e, KernelError::NotFound(_)), "{e:?}");
    let listed = f
        .kernel
        .list(&in_a.principal, &CUSTOMER, &all())
        .expect("list");
    assert!(listed.rows.iter().all(|r| r.company == f.company));
    assert_eq!(listed.total, 0);
    let e = f
        .kernel
        .update(
            &in_a.principal,
            &CUSTOMER,
            theirs.id,
            1,
            form(&[("name", "Moved")]),
        )
        .await
        .expect_err("not writable from Acme");
    assert!(matches!(e, KernelError::NotFound(_)), "{e:?}");
    // A company one may not work in is "not found", like one that does not exist.
    let (other, _) = {
        let id = f
            .kernel
            .create_company("Gamma", "USD")
            .await
            .expect("Gamma");
        (id, ())
    };
    for company in [other, 999_999, theirs.id] {
        let e = f
            .kernel
            .switch_company(&token, company)
            .await
            .expect_err("no access");
        assert!(matches!(e, KernelError::NotFound(_)), "{company}: {e:?}");
    }
    assert_eq!(
        f.kernel.session(&token).expect("session").principal.company,
        f.company
    );
}

#[tokio::test]
async fn a_membership_gives_its_role_and_nothing_more() {
    let f = fixture().await;
    let clerk = user_with_role(&f, &f.admin, "Clerk", "customer:rcw").await;
    let (b, token) = beta(&f).await;
    let ada_b = f
        .kernel
        .switch_company(&token, b)
        .await
        .expect("switch")
        .principal;
    let viewer = f
        .kernel
        .create(
            &ada_b,
            &ROLE,
            with_password(&[("name", "Reader"), ("permissions", "customer:r")], ADA),
        )
        .await
        .expect("role");
    let bea = user_with_role(
        &f,
        &ada_b,
        "Bea",
        "customer:rcwdx, user:rcwd, role:rcwd, membership:rcwd",
    )
    .await;
    let v = viewer.id.to_string();
    // Unconfirmed, unknown, own users and repeated members are refused with the reason.
    let e = f
        .kernel
        .create(
            &ada_b,
            &MEMBERSHIP,
            form(&[("username", "clerk"), ("role", &v)]),
        )
        .await
        .expect_err("unconfirmed");
    assert!(field_error(&e, CONFIRM_PASSWORD).contains("needs your own password"));
    // Unconfirmed, not even whether a login name exists is told.
    let e = f
        .kernel
        .create(
            &ada_b,
            &MEMBERSHIP,
            form(&[("username", "nobody"), ("role", &v)]),
        )
        .await
        .expect_err("unconfirmed");
    assert!(field_error(&e, CONFIRM_PASSWORD).contains("needs your own password"));
    for (name, says) in [
        ("nobody", "there is no user with the login name \"nobody\""),
        ("bea", "bea is a user of this company already"),
        ("ada", "ada is a member of this company already"),
    ] {
        let e = f
            .kernel
            .create(
                &ada_b,
                &MEMBERSHIP,
                with_password(&[("username", name), ("role", &v)], ADA),
            )
            .await
            .expect_err(name);
        assert!(field_error(&e, "username").contains(says), "{name}: {e}");
    }
    // The user id is the appliance's to set (one given is ignored), and the login name
    // is stored as the user's record spells it.
    let m = f
        .kernel
        .create(
            &ada_b,
            &MEMBERSHIP,
            with_password(&[("username", "clerk"), ("role", &v), ("user", "1")], ADA),
        )
        .await
        .expect("membership");
    assert_eq!(m.get("user"), &Value::Int(clerk as i64));
    assert_eq!(m.get("username"), &Value::Text("clerk".into()));
    // A role of another company is not one of this company's.
    let acme_admin = f
        .kernel
        .role_by_name(f.company, "Administrator")
        .expect("role");
    let e = f
        .kernel
        .update(
            &ada_b,
            &MEMBERSHIP,
            m.id,
            m.version,
            with_password(&[("role", &acme_admin.to_string())], ADA),
        )
        .await
        .expect_err("foreign role");
    assert!(field_error(&e, "role").contains("no role with id"), "{e}");

    // The clerk now works in both companies, in Beta with the viewer's rights only.
    let (clerk_token, s) = f
        .kernel
        .login("clerk", "a long enough secret 7", None)
        .await
        .expect("clerk");
    assert_eq!(s.principal.company, f.company);
    assert_eq!(s.companies().len(), 2);
    let clerk_b = f
        .kernel
        .switch_company(&clerk_token, b)
        .await
        .expect("switch")
        .principal;
    assert_eq!(clerk_b.role_name, "Reader");
    f.kernel
        .create(
            &ada_b,
            &CUSTOMER,
            form(&[("name", "Beta customer"), ("status", "Lead")]),
        )
        .await
        .expect("customer");
    let seen = f.kernel.list(&clerk_b, &CUSTOMER, &all()).expect("read");
    assert_eq!(seen.total, 1);
    let e = f
        .kernel
        .create(
            &clerk_b,
            &CUSTOMER,
            form(&[("name", "Nope"), ("status", "Lead")]),
        )
        .await
        .expect_err("viewer");
    assert!(matches!(e, KernelError::Forbidden { .. }), "{e:?}");
    assert!(f.kernel.list(&clerk_b, &USER, &all()).is_err());
    // Jobs run as the member, in that company.
    let p = f.kernel.principal_of(b, clerk).expect("principal");
    assert_eq!((p.company, p.role_name.as_str()), (b, "Reader"));

    // Nor may Beta's administrator, who cannot manage the clerk at home, raise the
    // clerk's role here (it would decide who may reset the clerk's password at home).
    let bea_p = f.kernel.principal_of(b, bea).expect("bea");
    let writer = f
        .kernel
        .create(
            &ada_b,
            &ROLE,
            with_password(&[("name", "Writer"), ("permissions", "customer:rcw")], ADA),
        )
        .await
        .expect("role");
    let current = f.kernel.get(&bea_p, &MEMBERSHIP, m.id).expect("membership");
    let e = f
        .kernel
        .update(
            &bea_p,
            &MEMBERSHIP,
            m.id,
            current.version,
            with_password(
                &[("role", &writer.id.to_string())],
                "a long enough secret 7",
            ),
        )
        .await
        .expect_err("not the clerk's manager at home");
    assert!(
        field_error(&e, "username").contains("needs the right to manage them in their own company"),
        "{e}"
    );
    assert!(
        !field_error(&e, "username").contains("Acme"),
        "names no company: {e}"
    );

    // Beta's administrator cannot reach the clerk's user record (it is Acme's): not
    // their password, not their account.
    let e = f
        .kernel
        .update(
            &bea_p,
            &USER,
            clerk,
            1,
            with_password(
                &[("password", "taken over by bea 1")],
                "a long enough secret 7",
            ),
        )
        .await
        .expect_err("not Beta's user");
    assert!(matches!(e, KernelError::NotFound(_)), "{e:?}");

    // Removing the membership sends the clerk's sessions in Beta home.
    f.kernel
        .delete(&ada_b, &MEMBERSHIP, m.id, Some(m.version))
        .await
        .expect("revoke");
    let s = f.kernel.session(&clerk_token).expect("still signed in");
    assert_eq!(s.principal.company, f.company);
    assert_eq!(s.companies(), [(f.company, "Acme".to_string())]);
    assert!(f.kernel.principal_of(b, clerk).is_err());
}

#[tokio::test]
async fn rights_in_another_company_bound_who_may_change_a_user() {
    let f = fixture().await;
    // Acme's user manager may manage users with a clerk's rights...
    let clerk = user_with_role(&f, &f.admin, "Clerk", "customer:rcw").await;
    let uma = user_with_role(&f, &f.admin, "Uma", "customer:rcw, user:rcw, role:r").await;
    let (b, token) = beta(&f).await;
    let ada_b = f
        .kernel
        .switch_company(&token, b)
        .await
        .expect("switch")
        .principal;
    let admin_b = f.kernel.role_by_name(b, "Administrator").expect("role");
    f.kernel
        .create(
            &ada_b,
            &MEMBERSHIP,
            with_password(
                &[("username", "clerk"), ("role", &admin_b.to_string())],
                ADA,
            ),
        )
        .await
        .expect("clerk administers Beta");
    // ...but the clerk now administers Beta: setting their password would open Beta to
    // Uma, so she may not.
    let uma_p = f.kernel.principal_of(f.company, uma).expect("uma");
    f.kernel
        .login("uma", "a long enough secret 7", None)
        .await
        .expect("uma signs in");
    let e = f
        .kernel
        .update(
            &uma_p,
            &USER,
            clerk,
            1,
            with_password(
                &[("password", "uma knows it now 1")],
                "a long enough secret 7",
            ),
        )
        .await
        .expect_err("beyond Uma's rights in Beta");
    let says = field_error(&e, "role");
    assert!(says.contains("also works in Beta GmbH"), "{says}");
    // Deactivating the clerk only takes access away: Uma may, and the clerk can act
    // nowhere; reactivating brings it back.
    f.kernel
        .update(
            &uma_p,
            &USER,
            clerk,
            1,
            with_password(&[("active", "false")], "a long enough secret 7"),
        )
        .await
        .expect("uma may deactivate");
    assert!(f.kernel.principal_of(b, clerk).is_err());
    assert!(f.kernel.principal_of(f.company, clerk).is_err());
    f.kernel
        .update(
            &f.admin,
            &USER,
            clerk,
            2,
            with_password(&[("active", "true")], ADA),
        )
        .await
        .expect("reactivate");
    // Ada administers both: she may.
    f.kernel
        .update(
            &f.admin,
            &USER,
            clerk,
            3,
            with_password(&[("password", "ada reset this one 1")], ADA),
        )
        .await
        .expect("ada may");
    // Deleting the clerk takes their memberships with them.
    f.kernel
        .delete(&f.admin, &USER, clerk, None)
        .await
        .expect("delete clerk");
    let members = f.kernel.list(&ada_b, &MEMBERSHIP, &all()).expect("members");
    assert_eq!(members.total, 1, "only ada's own remains");
}

#[tokio::test]
async fn a_company_keeps_an_administrator_among_its_members() {
    let f = fixture().await;
    let (b, token) = beta(&f).await;
    let ada_b = f
        .kernel
        .switch_company(&token, b)
        .await
        .expect("switch")
        .principal;
    let mine = f
        .kernel
        .list(&ada_b, &MEMBERSHIP, &all())
        .expect("members")
        .rows
        .remove(0);
    let e = f
        .kernel
        .delete(&ada_b, &MEMBERSHIP, mine.id, None)
        .await
        .expect_err("own access");
    assert!(e.to_string().contains("your own access"), "{e}");
    // Ada, a member, is Beta's only administrator: its Administrator role keeps its
    // grants.
    let admin_b = f.kernel.role_by_name(b, "Administrator").expect("role");
    let e = f
        .kernel
        .update(
            &ada_b,
            &ROLE,
            admin_b,
            1,
            with_password(&[("permissions", "customer:r")], ADA),
        )
        .await
        .expect_err("last administrator");
    assert!(e.to_string().contains("without an administrator"), "{e}");
    // A user of Beta may be demoted: the member still administers it.
    let bea = user_with_role(&f, &ada_b, "Bea", "*:rcwdx").await;
    let viewer = f
        .kernel
        .create(
            &ada_b,
            &ROLE,
            with_password(&[("name", "Reader"), ("permissions", "customer:r")], ADA),
        )
        .await
        .expect("viewer");
    f.kernel
        .update(
            &ada_b,
            &USER,
            bea,
            1,
            with_password(&[("role", &viewer.id.to_string())], ADA),
        )
        .await
        .expect("members count as administrators");
}

#[tokio::test]
async fn sign_ins_refusals_switches_and_sign_outs_are_entries_of_the_log() {
    let f = fixture().await;
    let (b, token) = beta(&f).await;
    let start = f.kernel.log_head();
    let refused = f
        .kernel
        .login("ada", "not ada's password", "10.0.0.7".parse().ok())
        .await
        .expect_err("wrong password");
    assert!(matches!(refused, KernelError::BadCredentials));
    f.kernel
        .login("nobody-here", "whatever it is", None)
        .await
        .expect_err("unknown name");
    f.kernel.switch_company(&token, b).await.expect("switch");
    f.kernel.logout(&token).await.expect("sign out");
    // Signing out twice writes nothing more.
    f.kernel.logout(&token).await.expect("again");
    let events = f.kernel.events_since(start, 100).expect("events");
    let kinds: Vec<(&str, u64, u64)> = events
        .iter()
        .map(|e| (e.entity.as_str(), e.company, e.actor))
        .collect();
    let ada = f.admin.user_id;
    assert_eq!(
        kinds,
        [
            ("sign_in_refused", f.company, ada),
            ("sign_in_refused", 0, 0),
            ("switch_company", b, ada),
            ("sign_out", b, ada),
        ]
    );
    let first = events[0].after.as_ref().expect("after");
    assert_eq!(first["username"], "ada");
    assert_eq!(first["address"], "10.0.0.7");
    // The password given never reaches the log.
    for (_, bytes) in f.kernel.log_leaves(1, u64::MAX).expect("leaves") {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("not ada's password") && !text.contains(ADA));
    }
    // A sign-in is one too, with the session in the same command.
    let (_, _) = f.kernel.login("ada", ADA, None).await.expect("login");
    let last = f.kernel.events_since(start, 100).expect("events");
    assert_eq!(last.last().map(|e| e.entity.as_str()), Some("sign_in"));
    f.kernel.verify_audit().expect("chain");
    assert_eq!(
        f.kernel.tree_head().expect("tree").size,
        f.kernel.log_head()
    );
}
