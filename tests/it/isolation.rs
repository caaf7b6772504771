//! Tenant-isolation sweep: for every console route and API endpoint, a user or API user of
//! another tenant tree (Globex) aiming at Acme's objects gets 404 or 401 (403 where its role may
//! not act at all; 422 where a form refuses a foreign id as it refuses an unknown one), never
//! data: no answer contains an Acme identifier that was not in the request itself, and Acme's
//! rows are unchanged afterwards.
//!
//! The sweep's table must cover exactly the routes the source registers (`routes::all`), so a
//! new route fails this test until it is listed here with its cross-tenant expectation.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fuzz::{basic, card_token, ids_of, register};
use crate::helpers::*;

const JSON_CT: &str = "application/json; charset=utf-8";
const GLOBEX_API: (&str, &str) = ("globex-api", "globex-api-demo");
const ACME_MONRI_TOKEN: &str = "acmeshopdemoauthenticitytoken00000000000";
const ACME_MONRI_KEY: &str = "demo-shop-merchant-key";

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// The Globex console users (tenant manager and merchant admin), each in its own browser.
    Console,
    /// The Globex API user, Basic auth.
    Api,
    /// The Globex connector's Monri Bearer token.
    Monri,
    /// No credentials: public endpoints, or credentials carried in the request itself.
    Anonymous,
}

struct Case {
    /// The route as registered, e.g. `/tenants/{id}`.
    route: (&'static str, &'static str),
    method: &'static str,
    path: String,
    /// A urlencoded form (console) or a JSON body (API).
    body: Option<Body>,
    caller: Caller,
    /// Allowed statuses (for the Globex merchant admin 403 is allowed as well).
    expect: &'static [u16],
    /// Why this status, shown on failure.
    why: &'static str,
}

enum Body {
    Form(Vec<(&'static str, String)>),
    Json(Value),
}

fn case(
    route: (&'static str, &'static str),
    path: impl Into<String>,
    body: Option<Body>,
    caller: Caller,
    expect: &'static [u16],
    why: &'static str,
) -> Case {
    Case {
        route,
        method: route.0,
        path: path.into(),
        body,
        caller,
        expect,
        why,
    }
}

fn form(fields: &[(&'static str, &str)]) -> Option<Body> {
    Some(Body::Form(
        fields.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    ))
}

fn json_body(v: Value) -> Option<Body> {
    Some(Body::Json(v))
}

/// Acme's objects, the targets.
struct Acme {
    group: String,
    retail: String,
    shop: String,
    outlet: String,
    manager: String,
    admin: String,
    container: String,
    profile: String,
    instrument: String,
    shop_cards: String,
    api_user: String,
    audit_entry: String,
    guid: String,
    ident: String,
    payment_token: String,
    tx_uuid: String,
    mtid: String,
    /// The callback of an Acme debit with a callbackUrl (undeliverable, so it can be retried).
    callback: String,
    callback_tx: String,
    monri_uuid: String,
    card_token: String,
    /// Every Acme identifier and datum that must not reach a Globex caller.
    markers: Vec<String>,
}

/// Globex's own objects, where a form needs one to get past its own checks.
struct Globex {
    tenant: String,
    store: String,
    container: String,
    connector: String,
}

fn one(app: &TestApp, table: &str, filter: &str) -> String {
    let mut v = ids_of(app, table, filter);
    assert_eq!(v.len(), 1, "{table} {filter}: {v:?}");
    v.pop().expect("one")
}

/// Every route with the Globex caller's cross-tenant attempt and its expected answer.
fn sweep(a: &Acme, g: &Globex) -> Vec<Case> {
    use Caller::*;
    const NOT_FOUND: &[u16] = &[404];
    const UNAUTHORIZED: &[u16] = &[401];
    let mut v = vec![
        // ---- public or the caller's own ----
        case(
            ("GET", "/healthz"),
            "/healthz",
            None,
            Anonymous,
            &[200],
            "public",
        ),
        case(
            ("GET", "/readyz"),
            "/readyz",
            None,
            Anonymous,
            &[200],
            "public",
        ),
        case(("GET", "/"), "/", None, Console, &[200, 303], "own home"),
        case(
            ("GET", "/login"),
            "/login",
            None,
            Console,
            &[200, 303],
            "own",
        ),
        case(
            ("POST", "/login"),
            "/login",
            form(&[("username", "manager"), ("password", "manager-wrong")]),
            Anonymous,
            &[422],
            "an Acme username with a wrong password is just a failed login",
        ),
        case(
            ("POST", "/logout"),
            "/logout",
            form(&[]),
            Anonymous,
            &[303],
            "logging out touches only the caller's session",
        ),
        case(
            ("GET", "/account/password"),
            "/account/password",
            None,
            Console,
            &[200],
            "own",
        ),
        case(
            ("POST", "/account/password"),
            "/account/password",
            form(&[
                ("current_password", "wrong-password"),
                ("new_password", "manager-demo-2"),
                ("confirm_password", "manager-demo-2"),
            ]),
            Console,
            &[422],
            "only one's own password",
        ),
        case(
            ("GET", "/account/two-factor"),
            "/account/two-factor",
            None,
            Console,
            &[200],
            "own",
        ),
        case(
            ("POST", "/account/two-factor/setup"),
            "/account/two-factor/setup",
            form(&[]),
            Console,
            &[200],
            "only one's own two-factor",
        ),
        case(
            ("POST", "/account/two-factor/enable"),
            "/account/two-factor/enable",
            form(&[("code", "not-a-code")]),
            Console,
            &[422],
            "only one's own two-factor",
        ),
        case(
            ("POST", "/account/two-factor/disable"),
            "/account/two-factor/disable",
            form(&[("code", "000000")]),
            Console,
            &[303],
            "only one's own two-factor (not on: back to the page)",
        ),
        case(
            ("GET", "/login/two-factor"),
            "/login/two-factor",
            None,
            Anonymous,
            &[303],
            "no pending sign-in: back to /login",
        ),
        case(
            ("POST", "/login/two-factor"),
            "/login/two-factor",
            form(&[("code", "123456")]),
            Anonymous,
            &[303],
            "no pending sign-in: back to /login",
        ),
        // ---- tenants ----
        case(
            ("GET", "/tenants"),
            "/tenants",
            None,
            Console,
            &[200],
            "list of own tenants",
        ),
        case(
            ("POST", "/tenants"),
            "/tenants",
            form(&[("name", "Inside Acme"), ("parent_id", &a.group)]),
            Console,
            &[404, 422],
            "an Acme parent is refused as an unknown one",
        ),
        case(
            ("GET", "/tenants/{id}"),
            format!("/tenants/{}", a.retail),
            None,
            Console,
            NOT_FOUND,
            "foreign tenant",
        ),
        case(
            ("POST", "/tenants/{id}"),
            format!("/tenants/{}", a.retail),
            form(&[("name", "Hijacked")]),
            Console,
            NOT_FOUND,
            "foreign tenant",
        ),
        case(
            ("GET", "/tenants/{id}/delete"),
            format!("/tenants/{}/delete", a.retail),
            None,
            Console,
            NOT_FOUND,
            "foreign tenant",
        ),
        case(
            ("POST", "/tenants/{id}/delete"),
            format!("/tenants/{}/delete", a.retail),
            form(&[]),
            Console,
            NOT_FOUND,
            "foreign tenant",
        ),
        case(
            ("GET", "/tenants/{id}/erase"),
            format!("/tenants/{}/erase", a.group),
            None,
            Console,
            NOT_FOUND,
            "foreign root tenant",
        ),
        case(
            ("POST", "/tenants/{id}/erase"),
            format!("/tenants/{}/erase", a.group),
            form(&[("confirm_name", "Acme Group")]),
            Console,
            NOT_FOUND,
            "foreign root tenant, its name typed",
        ),
        // ---- merchants ----
        case(
            ("GET", "/merchants"),
            "/merchants",
            None,
            Console,
            &[200],
            "list of own merchants",
        ),
        case(
            ("POST", "/merchants"),
            "/merchants",
            form(&[("tenant_id", &a.group), ("name", "Inside Acme")]),
            Console,
            &[404, 422],
            "an Acme tenant is refused as an unknown one",
        ),
        case(
            ("GET", "/merchants/{id}"),
            format!("/merchants/{}", a.shop),
            None,
            Console,
            NOT_FOUND,
            "foreign merchant",
        ),
        case(
            ("POST", "/merchants/{id}"),
            format!("/merchants/{}", a.shop),
            form(&[("name", "Hijacked")]),
            Console,
            NOT_FOUND,
            "foreign merchant",
        ),
        case(
            ("POST", "/merchants/{id}/active"),
            format!("/merchants/{}/active", a.outlet),
            form(&[("active", "false")]),
            Console,
            NOT_FOUND,
            "foreign merchant",
        ),
        case(
            ("GET", "/merchants/{id}/deactivate"),
            format!("/merchants/{}/deactivate", a.outlet),
            None,
            Console,
            NOT_FOUND,
            "foreign merchant",
        ),
        // ---- users ----
        case(
            ("GET", "/users"),
            "/users",
            None,
            Console,
            &[200],
            "list of own users",
        ),
        case(
            ("GET", "/users/new"),
            "/users/new",
            None,
            Console,
            &[200],
            "own form",
        ),
        case(
            ("POST", "/users"),
            "/users",
            form(&[
                ("username", "planted-in-acme"),
                ("role", "tenant_manager"),
                ("tenant_id", &a.group),
                ("merchant_id", ""),
                ("password", "planted-password-1"),
            ]),
            Console,
            &[404, 422],
            "an Acme tenant is refused as an unknown one",
        ),
        case(
            ("GET", "/users/{id}"),
            format!("/users/{}", a.manager),
            None,
            Console,
            NOT_FOUND,
            "foreign user",
        ),
        case(
            ("POST", "/users/{id}/active"),
            format!("/users/{}/active", a.manager),
            form(&[("active", "false")]),
            Console,
            NOT_FOUND,
            "foreign user",
        ),
        case(
            ("GET", "/users/{id}/deactivate"),
            format!("/users/{}/deactivate", a.admin),
            None,
            Console,
            NOT_FOUND,
            "the platform admin is outside every tenant tree",
        ),
        case(
            ("POST", "/users/{id}/reset-password"),
            format!("/users/{}/reset-password", a.manager),
            form(&[]),
            Console,
            NOT_FOUND,
            "foreign user",
        ),
        case(
            ("POST", "/users/{id}/reset-two-factor"),
            format!("/users/{}/reset-two-factor", a.manager),
            form(&[]),
            Console,
            NOT_FOUND,
            "foreign user",
        ),
        // ---- the API reference: the same for everyone ----
        case(
            ("GET", "/openapi/ixopay.json"),
            "/openapi/ixopay.json",
            None,
            Anonymous,
            &[200],
            "public",
        ),
        case(
            ("GET", "/openapi/monri.json"),
            "/openapi/monri.json",
            None,
            Anonymous,
            &[200],
            "public",
        ),
        case(
            ("GET", "/docs/api"),
            "/docs/api",
            None,
            Console,
            &[200],
            "the same reference for every user",
        ),
        // ---- vault keys (platform admins only) ----
        case(
            ("GET", "/vault"),
            "/vault",
            None,
            Console,
            &[403],
            "platform admins only",
        ),
        case(
            ("POST", "/vault/rotate"),
            "/vault/rotate",
            form(&[("owner", &a.group)]),
            Console,
            &[403],
            "platform admins only, another tenant's key least of all",
        ),
        case(
            ("POST", "/vault/reencrypt"),
            "/vault/reencrypt",
            form(&[]),
            Console,
            &[403],
            "platform admins only",
        ),
        // ---- audit ----
        case(
            ("GET", "/audit"),
            "/audit",
            None,
            Console,
            &[200],
            "own entries only",
        ),
        // ---- transactions ----
        case(
            ("GET", "/transactions"),
            "/transactions",
            None,
            Console,
            &[200],
            "own transactions only",
        ),
        case(
            ("GET", "/transactions"),
            format!("/transactions?merchant={}", a.shop),
            None,
            Console,
            NOT_FOUND,
            "foreign merchant as the filter",
        ),
        case(
            ("GET", "/transactions"),
            format!("/transactions?connector={}", a.shop_cards),
            None,
            Console,
            NOT_FOUND,
            "foreign connector as the filter",
        ),
        case(
            ("GET", "/transactions"),
            format!("/transactions?profile={}", a.profile),
            None,
            Console,
            NOT_FOUND,
            "foreign profile as the filter",
        ),
        case(
            ("GET", "/transactions.csv"),
            "/transactions.csv",
            None,
            Console,
            &[200],
            "exports own transactions only",
        ),
        case(
            ("GET", "/transactions.csv"),
            format!("/transactions.csv?merchant={}", a.shop),
            None,
            Console,
            NOT_FOUND,
            "foreign merchant as the export's filter",
        ),
        case(
            ("GET", "/transactions/{uuid}"),
            format!("/transactions/{}", a.tx_uuid),
            None,
            Console,
            NOT_FOUND,
            "foreign transaction",
        ),
        // ---- containers and profiles ----
        case(
            ("GET", "/containers"),
            format!("/containers?tenant={}", a.group),
            None,
            Console,
            NOT_FOUND,
            "foreign tenant",
        ),
        case(
            ("POST", "/containers"),
            "/containers",
            form(&[("tenant_id", &a.retail), ("name", "Inside Acme")]),
            Console,
            &[404, 422],
            "an Acme tenant is refused as an unknown one",
        ),
        case(
            ("GET", "/containers/{id}"),
            format!("/containers/{}?q={}", a.container, a.ident),
            None,
            Console,
            NOT_FOUND,
            "foreign container",
        ),
        case(
            ("POST", "/containers/{id}"),
            format!("/containers/{}", a.container),
            form(&[("name", "Hijacked")]),
            Console,
            NOT_FOUND,
            "foreign container",
        ),
        case(
            ("GET", "/containers/{id}/delete"),
            format!("/containers/{}/delete", a.container),
            None,
            Console,
            NOT_FOUND,
            "foreign container",
        ),
        case(
            ("POST", "/containers/{id}/delete"),
            format!("/containers/{}/delete", a.container),
            form(&[]),
            Console,
            NOT_FOUND,
            "foreign container",
        ),
        case(
            ("POST", "/containers/{id}/account-updater"),
            format!("/containers/{}/account-updater", a.container),
            form(&[("confirmed", "yes")]),
            Console,
            NOT_FOUND,
            "foreign container",
        ),
        case(
            ("GET", "/profiles/{id}"),
            format!("/profiles/{}", a.profile),
            None,
            Console,
            NOT_FOUND,
            "foreign profile",
        ),
        case(
            ("GET", "/profiles/{id}/delete"),
            format!("/profiles/{}/delete", a.profile),
            None,
            Console,
            NOT_FOUND,
            "foreign profile",
        ),
        case(
            ("POST", "/profiles/{id}/delete"),
            format!("/profiles/{}/delete", a.profile),
            form(&[]),
            Console,
            NOT_FOUND,
            "foreign profile",
        ),
        case(
            ("POST", "/profiles/{id}/instruments/{instrument}/preferred"),
            format!(
                "/profiles/{}/instruments/{}/preferred",
                a.profile, a.instrument
            ),
            form(&[("confirmed", "yes")]),
            Console,
            NOT_FOUND,
            "foreign profile's instrument",
        ),
        case(
            ("POST", "/profiles/{id}/instruments/{instrument}/delete"),
            format!(
                "/profiles/{}/instruments/{}/delete",
                a.profile, a.instrument
            ),
            form(&[("confirmed", "yes")]),
            Console,
            NOT_FOUND,
            "foreign profile's instrument",
        ),
        case(
            ("GET", "/global-settings"),
            format!("/global-settings?tenant={}", a.group),
            None,
            Console,
            NOT_FOUND,
            "foreign tenant",
        ),
        case(
            ("POST", "/global-settings"),
            "/global-settings",
            form(&[("tenant_id", &a.group), ("container_id", &g.container)]),
            Console,
            &[404, 422],
            "an Acme tenant is refused as an unknown one",
        ),
        // ---- connectors and API users ----
        case(
            ("GET", "/connectors"),
            "/connectors",
            None,
            Console,
            &[200],
            "list of own connectors",
        ),
        case(
            ("POST", "/connectors"),
            "/connectors",
            form(&[
                ("merchant_id", &a.shop),
                ("name", "Inside Acme"),
                ("adapter", "creditcard"),
            ]),
            Console,
            &[404, 422],
            "an Acme merchant is refused as an unknown one",
        ),
        case(
            ("GET", "/connectors/{id}"),
            format!("/connectors/{}", a.shop_cards),
            None,
            Console,
            NOT_FOUND,
            "foreign connector",
        ),
        case(
            ("POST", "/connectors/{id}"),
            format!("/connectors/{}", a.shop_cards),
            form(&[
                ("name", "Hijacked"),
                ("container_id", &g.container),
                ("active", "true"),
            ]),
            Console,
            NOT_FOUND,
            "foreign connector",
        ),
        case(
            ("POST", "/connectors/{id}/rotate-secret"),
            format!("/connectors/{}/rotate-secret", a.shop_cards),
            form(&[]),
            Console,
            NOT_FOUND,
            "foreign connector",
        ),
        case(
            ("POST", "/connectors/{id}/rotate-monri-key"),
            format!("/connectors/{}/rotate-monri-key", a.shop_cards),
            form(&[]),
            Console,
            NOT_FOUND,
            "foreign connector",
        ),
        case(
            ("GET", "/connectors/{id}/lifecycle-events"),
            format!("/connectors/{}/lifecycle-events", a.shop_cards),
            None,
            Console,
            NOT_FOUND,
            "foreign connector",
        ),
        case(
            (
                "POST",
                "/connectors/{id}/lifecycle-events/{event}/redeliver",
            ),
            format!(
                "/connectors/{}/lifecycle-events/{}/redeliver",
                a.shop_cards, a.callback
            ),
            form(&[]),
            Console,
            NOT_FOUND,
            "foreign connector",
        ),
        case(
            ("GET", "/api-users"),
            format!("/api-users?merchant={}", a.shop),
            None,
            Console,
            NOT_FOUND,
            "foreign merchant",
        ),
        case(
            ("POST", "/api-users"),
            "/api-users",
            form(&[("merchant_id", &a.shop), ("username", "planted-api")]),
            Console,
            &[404, 422],
            "an Acme merchant is refused as an unknown one",
        ),
        case(
            ("POST", "/api-users/{id}/active"),
            format!("/api-users/{}/active", a.api_user),
            form(&[("active", "false")]),
            Console,
            NOT_FOUND,
            "foreign API user",
        ),
        case(
            ("POST", "/api-users/{id}/reset-password"),
            format!("/api-users/{}/reset-password", a.api_user),
            form(&[]),
            Console,
            NOT_FOUND,
            "foreign API user",
        ),
        case(
            ("POST", "/transactions/{uuid}/callbacks/{id}/retry"),
            format!(
                "/transactions/{}/callbacks/{}/retry",
                a.callback_tx, a.callback
            ),
            form(&[]),
            Console,
            NOT_FOUND,
            "foreign callback",
        ),
    ];
    // Globex's own objects pointed at Acme's: the form refuses the foreign id.
    v.extend([
        case(
            ("POST", "/connectors/{id}"),
            format!("/connectors/{}", g.connector),
            form(&[
                ("name", "Globex Cards"),
                ("container_id", &a.container),
                ("active", "true"),
            ]),
            Console,
            &[404, 422],
            "Acme's container cannot be given to a Globex connector",
        ),
        case(
            ("POST", "/global-settings"),
            "/global-settings",
            form(&[("tenant_id", &g.tenant), ("container_id", &a.container)]),
            Console,
            &[404, 422],
            "Acme's container cannot be Globex's global one",
        ),
        case(
            ("GET", "/profiles"),
            format!("/profiles?q={}", a.ident),
            None,
            Console,
            &[200],
            "searching every container in scope does not find Acme's profile",
        ),
        case(
            ("GET", "/containers/{id}"),
            format!("/containers/{}?q={}", g.container, a.ident),
            None,
            Console,
            &[200],
            "searching the own container does not find Acme's profile",
        ),
        case(
            ("GET", "/audit"),
            format!("/audit?before={}", a.audit_entry),
            None,
            Console,
            &[200],
            "an Acme entry as the cursor shows only own entries",
        ),
        case(
            ("GET", "/audit"),
            format!("/audit?profile={}", a.guid),
            None,
            Console,
            &[200],
            "filtering to an Acme profile shows none of its entries",
        ),
        case(
            ("GET", "/audit.csv"),
            format!("/audit.csv?profile={}", a.guid),
            None,
            Console,
            &[200],
            "exporting an Acme profile's entries exports none",
        ),
        case(
            ("GET", "/audit"),
            format!("/audit?profile={}&actor=manager", a.manager),
            None,
            Console,
            &[200],
            "filtering to an Acme user and actor shows none of their entries",
        ),
        case(
            ("POST", "/api-users"),
            "/api-users",
            form(&[("merchant_id", &g.store), ("username", "shop-api")]),
            Console,
            &[409, 422],
            "an Acme API username is taken, and nothing of it is shown",
        ),
    ]);

    // ---- Transaction API: Acme's connector with Globex credentials, and Globex's connector
    // with Acme's tokens, profiles and transactions ----
    const TX: [&str; 7] = [
        "debit",
        "preauthorize",
        "capture",
        "void",
        "register",
        "deregister",
        "refund",
    ];
    let tx_route = ("POST", "/api/v3/transaction/{api_key}/{tx_type}");
    for kind in TX {
        v.push(case(
            tx_route,
            format!("/api/v3/transaction/demo-shop-cards/{kind}"),
            json_body(
                json!({"merchantTransactionId": "iso-1", "amount": "1.00", "currency": "EUR",
                             "transactionToken": a.payment_token, "referenceUuid": a.tx_uuid}),
            ),
            Api,
            UNAUTHORIZED,
            "Globex's API user is not bound to Acme's connector",
        ));
    }
    let mtid = |n: u32| format!("iso-{n}-{}", coffer::ids::random_hex(4));
    v.extend([
        case(
            tx_route,
            "/api/v3/transaction/demo-globex-cards/debit",
            json_body(
                json!({"merchantTransactionId": mtid(1), "amount": "1.00", "currency": "EUR",
                             "transactionToken": a.payment_token}),
            ),
            Api,
            &[404, 422],
            "Acme's payment token is unknown to Globex's connector",
        ),
        case(
            tx_route,
            "/api/v3/transaction/demo-globex-cards/debit",
            json_body(
                json!({"merchantTransactionId": mtid(2), "amount": "1.00", "currency": "EUR",
                             "transactionToken": a.card_token}),
            ),
            Api,
            &[404, 422],
            "a card token issued to Acme's connector cannot be consumed by Globex's",
        ),
        case(
            tx_route,
            "/api/v3/transaction/demo-globex-cards/register",
            json_body(
                json!({"merchantTransactionId": mtid(3), "transactionToken": a.payment_token,
                             "customerProfileData": {"profileGuid": a.guid}}),
            ),
            Api,
            &[404, 422],
            "Acme's profile cannot be registered into",
        ),
        case(
            tx_route,
            "/api/v3/transaction/demo-globex-cards/capture",
            json_body(
                json!({"merchantTransactionId": mtid(4), "amount": "1.00", "currency": "EUR",
                             "referenceUuid": a.tx_uuid}),
            ),
            Api,
            &[404, 422],
            "Acme's transaction is unknown to Globex's connector",
        ),
        case(
            tx_route,
            "/api/v3/transaction/demo-globex-cards/void",
            json_body(json!({"merchantTransactionId": mtid(5), "referenceUuid": a.tx_uuid})),
            Api,
            &[404, 422],
            "Acme's transaction is unknown to Globex's connector",
        ),
        case(
            tx_route,
            "/api/v3/transaction/demo-globex-cards/refund",
            json_body(
                json!({"merchantTransactionId": mtid(6), "amount": "1.00", "currency": "EUR",
                             "referenceUuid": a.tx_uuid}),
            ),
            Api,
            &[404, 422],
            "Acme's transaction is unknown to Globex's connector",
        ),
        case(
            tx_route,
            "/api/v3/transaction/demo-globex-cards/deregister",
            json_body(
                json!({"merchantTransactionId": mtid(7), "transactionToken": a.payment_token}),
            ),
            Api,
            &[404, 422],
            "Acme's payment token is unknown to Globex's connector",
        ),
    ]);
    // ---- Customer Profiles API ----
    let cp_route = ("POST", "/api/v3/customerProfiles/{api_key}/{op}");
    for op in ["getProfile", "updateProfile", "deleteProfile"] {
        let update = json!({"firstName": "Hijacked"});
        v.push(case(
            cp_route,
            format!("/api/v3/customerProfiles/demo-shop-cards/{op}"),
            json_body(json!({"profileGuid": a.guid, "customerData": update})),
            Api,
            UNAUTHORIZED,
            "Globex's API user is not bound to Acme's connector",
        ));
        for key in [
            json!({"profileGuid": a.guid, "customerData": update}),
            json!({"customerIdentification": a.ident, "customerData": update}),
        ] {
            v.push(case(
                cp_route,
                format!("/api/v3/customerProfiles/demo-globex-cards/{op}"),
                json_body(key),
                Api,
                if op == "getProfile" {
                    &[200]
                } else {
                    NOT_FOUND
                },
                if op == "getProfile" {
                    "IXOPAY's answer for a profile that does not exist: 200, profileExists false"
                } else {
                    "Acme's profile is not in Globex's container"
                },
            ));
        }
    }
    // ---- Status API ----
    for (op, id, route) in [
        (
            "getByUuid",
            &a.tx_uuid,
            "/api/v3/status/{api_key}/getByUuid/{uuid}",
        ),
        (
            "getByMerchantTransactionId",
            &a.mtid,
            "/api/v3/status/{api_key}/getByMerchantTransactionId/{id}",
        ),
    ] {
        v.push(case(
            ("GET", route),
            format!("/api/v3/status/demo-shop-cards/{op}/{id}"),
            None,
            Api,
            UNAUTHORIZED,
            "Globex's API user is not bound to Acme's connector",
        ));
        v.push(case(
            ("GET", route),
            format!("/api/v3/status/demo-globex-cards/{op}/{id}"),
            None,
            Api,
            // The Status API's not found: HTTP 200 with success false and 8001.
            &[200],
            "Acme's transaction is not Globex's connector's",
        ));
    }
    // ---- payment.js tokenize: public by design; its tokens are bound to their connector
    // (the card-token debit above) ----
    v.extend([
        case(
            ("POST", "/api/v3/paymentjs/{public_key}/tokenize"),
            "/api/v3/paymentjs/demo-shop-public/tokenize",
            json_body(
                json!({"number": "5555555555554444", "cvv": "123", "month": "12", "year": "2030"}),
            ),
            Anonymous,
            &[200],
            "public: answers a fresh token and nothing of Acme's",
        ),
        case(
            ("OPTIONS", "/api/v3/paymentjs/{public_key}/tokenize"),
            "/api/v3/paymentjs/demo-shop-public/tokenize",
            None,
            Anonymous,
            &[204],
            "CORS preflight",
        ),
    ]);
    // ---- hosted payment page and 3-D Secure: the secret token in the URL is the only key;
    // without it (a guessed token, or a malformed one) the page does not exist. A POST without
    // the payment pages' own CSRF secret (their cookie; this browser holds only the console's)
    // is refused before the token is looked at: 403 ----
    let guess = coffer::ids::random_hex(32);
    for path in [format!("/pay/{guess}"), "/pay/pt::not-a-token".to_string()] {
        v.extend([
            case(
                ("GET", "/pay/{token}"),
                path.clone(),
                None,
                Anonymous,
                NOT_FOUND,
                "unknown payment page",
            ),
            case(
                ("POST", "/pay/{token}"),
                path.clone(),
                form(&[
                    ("instrument", "new"),
                    ("card_holder", "Mallory"),
                    ("card_number", "4111111111111111"),
                    ("exp_month", "12"),
                    ("exp_year", "2030"),
                    ("cvv", "123"),
                ]),
                Anonymous,
                &[403, 404],
                "unknown payment page",
            ),
            case(
                ("POST", "/pay/{token}/cancel"),
                format!("{path}/cancel"),
                form(&[]),
                Anonymous,
                &[403, 404],
                "unknown payment page",
            ),
        ]);
    }
    for path in [format!("/3ds/{guess}"), "/3ds/x".to_string()] {
        v.extend([
            case(
                ("GET", "/3ds/{token}"),
                path.clone(),
                None,
                Anonymous,
                NOT_FOUND,
                "unknown challenge",
            ),
            case(
                ("POST", "/3ds/{token}"),
                path.clone(),
                form(&[("action", "approve")]),
                Anonymous,
                &[403, 404],
                "unknown challenge",
            ),
        ]);
    }
    // ---- Monri Customers API v2 with Globex's token ----
    let u = &a.monri_uuid;
    v.extend([
        case(
            ("POST", "/v2/oauth"),
            "/v2/oauth",
            json_body(
                json!({"client_id": ACME_MONRI_TOKEN, "client_secret": "globex-guess",
                             "grant_type": "client_credentials", "scopes": ["customers"]}),
            ),
            Anonymous,
            UNAUTHORIZED,
            "Acme's client id without its secret",
        ),
        case(
            ("GET", "/v2/customers"),
            "/v2/customers?limit=100",
            None,
            Monri,
            &[200],
            "Globex's own customers only",
        ),
        case(
            ("POST", "/v2/customers"),
            "/v2/customers",
            json_body(json!({"merchant_customer_id": "globex-iso-1", "name": "Globex Person"})),
            Monri,
            &[200],
            "created in Globex's own container",
        ),
        case(
            ("GET", "/v2/customers/{uuid}"),
            format!("/v2/customers/{u}"),
            None,
            Monri,
            NOT_FOUND,
            "foreign customer",
        ),
        case(
            ("POST", "/v2/customers/{uuid}"),
            format!("/v2/customers/{u}"),
            json_body(json!({"name": "Hijacked"})),
            Monri,
            NOT_FOUND,
            "foreign customer",
        ),
        case(
            ("DELETE", "/v2/customers/{uuid}"),
            format!("/v2/customers/{u}"),
            None,
            Monri,
            NOT_FOUND,
            "foreign customer",
        ),
        case(
            ("GET", "/v2/customers/{uuid}/payment-methods"),
            format!("/v2/customers/{u}/payment-methods"),
            None,
            Monri,
            NOT_FOUND,
            "foreign customer",
        ),
        case(
            ("GET", "/v2/merchants/customers/{merchant_customer_id}"),
            format!("/v2/merchants/customers/{}", a.ident),
            None,
            Monri,
            NOT_FOUND,
            "foreign customer",
        ),
        case(
            ("GET", "/v2/payment-methods"),
            "/v2/payment-methods?limit=100",
            None,
            Monri,
            &[200],
            "Globex's own customers' cards only",
        ),
    ]);
    v
}

/// A text snapshot of every Acme row that a Globex caller could try to change.
fn acme_rows(app: &TestApp, acme_path: &str, acme_connectors: &str) -> Vec<String> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        r: String,
    }
    let t = |c: &str| format!("COALESCE(CAST({c} AS TEXT), '-')");
    let cols = |cs: &[&str]| {
        cs.iter()
            .map(|c| t(c))
            .collect::<Vec<_>>()
            .join(" || '|' || ")
    };
    let p = format!("'{acme_path}%'");
    let queries = [
        format!(
            "SELECT 'tenant|' || {} AS r FROM tenants WHERE path LIKE {p}",
            cols(&[
                "id",
                "name",
                "parent_id",
                "disable_containers_for_subtenants",
                "updated_at"
            ])
        ),
        format!(
            "SELECT 'merchant|' || {} AS r FROM merchants WHERE tenant_path LIKE {p}",
            cols(&["id", "name", "active", "updated_at"])
        ),
        format!(
            "SELECT 'user|' || {} AS r FROM users WHERE scope_path LIKE {p} OR role = 'platform_admin'",
            cols(&[
                "id",
                "username",
                "password_hash",
                "active",
                "session_epoch",
                "updated_at"
            ])
        ),
        format!(
            "SELECT 'container|' || {} AS r FROM containers WHERE tenant_path LIKE {p}",
            cols(&["id", "name", "profile_count", "updated_at"])
        ),
        format!(
            "SELECT 'global|' || {} AS r FROM global_settings WHERE tenant_id IN (SELECT id FROM tenants WHERE path LIKE {p})",
            cols(&["tenant_id", "container_id", "updated_at"])
        ),
        format!(
            "SELECT 'connector|' || {} AS r FROM connectors WHERE tenant_path LIKE {p}",
            cols(&[
                "id",
                "name",
                "shared_secret",
                "container_id",
                "ignore_global",
                "signing",
                "active",
                "monri_authenticity_token",
                "monri_merchant_key",
                "updated_at",
            ])
        ),
        format!(
            "SELECT 'api_user|' || {} AS r FROM api_users WHERE tenant_path LIKE {p}",
            cols(&["id", "username", "password_hash", "active", "updated_at"])
        ),
        format!(
            "SELECT 'profile|' || {} AS r FROM profiles WHERE container_id IN (SELECT id FROM containers WHERE tenant_path LIKE {p})",
            cols(&[
                "id",
                "profile_guid",
                "customer_identification",
                "customer",
                "deleted_at",
                "updated_at"
            ])
        ),
        format!(
            "SELECT 'instrument|' || {} AS r FROM instruments WHERE connector_id IN ({acme_connectors})",
            cols(&[
                "id",
                "profile_id",
                "payment_token",
                "is_preferred",
                "updated_at"
            ])
        ),
        format!(
            "SELECT 'transaction|' || {} AS r FROM transactions WHERE tenant_path LIKE {p}",
            cols(&[
                "uuid",
                "status",
                "captured_amount",
                "refunded_amount",
                "voided",
                "updated_at"
            ])
        ),
    ];
    let db = app.db();
    let mut c = db.get().expect("conn");
    let mut rows: Vec<String> = queries
        .iter()
        .flat_map(|q| {
            diesel::sql_query(q)
                .load::<Row>(&mut *c)
                .unwrap_or_else(|e| panic!("{q}: {e}"))
        })
        .map(|r| r.r)
        .collect();
    rows.sort();
    rows
}

async fn monri_token(app: &TestApp, client_id: &str, secret: &str) -> String {
    let r = app
        .client
        .post(app.url("/v2/oauth"))
        .json(&json!({"client_id": client_id, "client_secret": secret,
                      "grant_type": "client_credentials",
                      "scopes": ["customers", "payment-methods"]}))
        .send()
        .await
        .expect("oauth");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    v["access_token"].as_str().expect("token").to_string()
}

/// Issues Globex Cards' Monri credentials through the console (admin) and reads them.
async fn globex_monri(app: &TestApp, connector: &str) -> (String, String) {
    let r = app
        .post_form(
            &format!("/connectors/{connector}/rotate-monri-key"),
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    let grab = |marker: &str| -> String {
        let i = page.find(marker).expect(marker) + marker.len();
        page[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect()
    };
    (
        grab("<code id=\"monri-authenticity-token\">"),
        grab("New Monri merchant key (shown only now, store it safely): "),
    )
}

/// One caller: name, browser or client, Authorization header, CSRF token, statuses its role
/// may also get.
type Who<'a> = (
    &'a str,
    &'a reqwest::Client,
    Option<&'a str>,
    Option<String>,
    &'a [u16],
);

/// Fresh values of the shapes of Acme's identifiers, that exist nowhere.
fn twin_values(a: &Acme) -> Vec<(String, String)> {
    use coffer::gateway::ids;
    let id = coffer::ids::new_id;
    let mut v = vec![
        (a.guid.clone(), ids::profile_guid()),
        (a.payment_token.clone(), ids::payment_token()),
        (a.tx_uuid.clone(), ids::transaction_uuid()),
        (a.callback.clone(), coffer::ids::new_id()),
        (a.callback_tx.clone(), ids::transaction_uuid()),
        (a.card_token.clone(), ids::card_token()),
        (
            a.mtid.clone(),
            format!("order-{}", coffer::ids::random_hex(6)),
        ),
        (
            a.ident.clone(),
            format!("no-such-{}", coffer::ids::random_hex(4)),
        ),
        (a.monri_uuid.clone(), uuid::Uuid::new_v4().to_string()),
    ];
    for x in [
        &a.group,
        &a.retail,
        &a.shop,
        &a.outlet,
        &a.manager,
        &a.admin,
        &a.container,
        &a.profile,
        &a.shop_cards,
        &a.api_user,
        &a.audit_entry,
    ] {
        v.push((x.clone(), id()));
    }
    v
}

/// The case with Acme's identifiers replaced; `None` when it names none of them.
fn twin_of(c: &Case, twins: &[(String, String)]) -> Option<Case> {
    let swap = |s: &str| {
        twins.iter().fold(s.to_string(), |acc, (from, to)| {
            acc.replace(from.as_str(), to)
        })
    };
    let path = swap(&c.path);
    let body = match &c.body {
        None => None,
        Some(Body::Form(f)) => Some(Body::Form(f.iter().map(|(k, v)| (*k, swap(v))).collect())),
        Some(Body::Json(v)) => Some(Body::Json(
            serde_json::from_str(&swap(&v.to_string())).expect("json"),
        )),
    };
    let changed = path != c.path
        || match (&c.body, &body) {
            (Some(Body::Form(a)), Some(Body::Form(b))) => a != b,
            (Some(Body::Json(a)), Some(Body::Json(b))) => a != b,
            _ => false,
        };
    if !changed {
        return None;
    }
    // A fresh merchantTransactionId, so that the twin is not refused as a duplicate.
    let body = match body {
        Some(Body::Json(v)) => Some(Body::Json(
            serde_json::from_str(&v.to_string().replace("\"iso-", "\"twin-")).expect("json"),
        )),
        other => other,
    };
    Some(Case {
        route: c.route,
        method: c.method,
        path,
        body,
        caller: c.caller,
        expect: c.expect,
        why: c.why,
    })
}

/// What kind of answer a body is, without the values: the API error codes and flags.
fn answer_kind(body: &str) -> Vec<String> {
    let json = body.split_once('\n').map_or(body, |(_, b)| b);
    match serde_json::from_str::<Value>(json) {
        Ok(v) => [
            "success",
            "errorCode",
            "status",
            "profileExists",
            "returnType",
        ]
        .iter()
        .map(|k| format!("{k}={}", v[*k]))
        .collect(),
        Err(_) => vec![],
    }
}

async fn send(
    app: &TestApp,
    http: &reqwest::Client,
    c: &Case,
    auth: Option<&str>,
    csrf: Option<&str>,
) -> (u16, String) {
    let m = reqwest::Method::from_bytes(c.method.as_bytes()).expect("method");
    let mut r = http.request(m, app.url(&c.path));
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    match &c.body {
        Some(Body::Form(fields)) => {
            let mut f: Vec<(&str, &str)> = vec![];
            if let Some(t) = csrf {
                f.push(("csrf_token", t));
            }
            f.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
            r = r.form(&f);
        }
        Some(Body::Json(v)) => {
            r = r.header("content-type", JSON_CT).body(v.to_string());
        }
        None => {}
    }
    let resp = r.send().await.expect("send");
    let status = resp.status().as_u16();
    let location = location(&resp);
    let text = resp.text().await.expect("body");
    (status, format!("{location}\n{text}"))
}

#[tokio::test]
async fn another_tenant_trees_users_and_api_users_get_404_or_401_never_acme_data() {
    let app = TestApp::demo().await;
    // Data to leak: a profile with a card, registered through the Transaction API.
    let ident = format!("acme-secret-{}", coffer::ids::random_hex(4));
    let reg = register(
        &app,
        &ident,
        json!({"firstName": "Zebulon", "lastName": "Quixotica",
               "email": "zebulon.quixotica@acme-secret.example", "billingCity": "Acmeville"}),
    )
    .await;
    let card = card_token(&app, "demo-shop-public", "4111111111111111").await;
    // An Acme payment with a callback (to a closed loopback port: demo mode allows loopback).
    let (s, v) = crate::fuzz::post_json(
        &app,
        "/api/v3/transaction/demo-shop-cards/debit",
        Some(crate::fuzz::basic("shop-api", "shop-api-demo")),
        &json!({"merchantTransactionId": format!("cb-{}", coffer::ids::random_hex(4)),
                "amount": "1.00", "currency": "EUR", "transactionToken": reg.payment_token,
                "callbackUrl": "http://127.0.0.1:9/acme-callback"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let cb_tx = v["uuid"].as_str().expect("uuid").to_string();
    let callback = one(
        &app,
        "callbacks",
        &format!("WHERE transaction_uuid = '{cb_tx}'"),
    );
    let acme_bearer = monri_token(&app, ACME_MONRI_TOKEN, ACME_MONRI_KEY).await;
    let r = app
        .client
        .get(app.url(&format!("/v2/merchants/customers/{ident}")))
        .header("authorization", format!("Bearer {acme_bearer}"))
        .send()
        .await
        .expect("GET");
    let monri_uuid = r.json::<Value>().await.expect("json")["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();

    // The Globex console users, created by the platform admin.
    app.login_ok("admin", "admin-demo").await;
    let g = Globex {
        tenant: one(&app, "tenants", "WHERE name = 'Globex'"),
        store: one(&app, "merchants", "WHERE name = 'Globex Store'"),
        container: one(&app, "containers", "WHERE name = 'Globex Profiles'"),
        connector: connector_id(&app, "Globex Cards"),
    };
    for (user, role, tenant, merchant) in [
        ("globex-boss", "tenant_manager", g.tenant.as_str(), ""),
        ("globex-clerk", "merchant_admin", "", g.store.as_str()),
    ] {
        let r = app
            .post_form(
                "/users",
                &[
                    ("username", user),
                    ("role", role),
                    ("tenant_id", tenant),
                    ("merchant_id", merchant),
                    ("password", "globex-password-1"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "create {user}");
    }
    let (gtoken, gkey) = globex_monri(&app, &g.connector).await;
    let globex_bearer = format!("Bearer {}", monri_token(&app, &gtoken, &gkey).await);

    let group = one(&app, "tenants", "WHERE name = 'Acme Group'");
    let acme_path = format!("/{group}/");
    let acme_connectors =
        format!("SELECT id FROM connectors WHERE tenant_path LIKE '{acme_path}%'");
    let a = {
        let mut a = Acme {
            group: group.clone(),
            retail: one(&app, "tenants", "WHERE name = 'Acme Retail'"),
            shop: one(&app, "merchants", "WHERE name = 'Acme Shop'"),
            outlet: one(&app, "merchants", "WHERE name = 'Acme Outlet'"),
            manager: one(&app, "users", "WHERE username = 'manager'"),
            admin: one(&app, "users", "WHERE username = 'admin'"),
            container: one(&app, "containers", "WHERE name = 'Acme Shared Profiles'"),
            profile: one(
                &app,
                "profiles",
                &format!("WHERE customer_identification = '{ident}'"),
            ),
            instrument: one(
                &app,
                "instruments",
                &format!(
                    "WHERE profile_id IN (SELECT id FROM profiles WHERE customer_identification = '{ident}')"
                ),
            ),
            shop_cards: connector_id(&app, "Acme Shop Cards"),
            api_user: one(&app, "api_users", "WHERE username = 'shop-api'"),
            audit_entry: ids_of(
                &app,
                "audit_log",
                &format!("WHERE tenant_path LIKE '{acme_path}%'"),
            )
            .pop()
            .expect("an Acme audit entry"),
            guid: reg.guid.clone(),
            ident: ident.clone(),
            payment_token: reg.payment_token.clone(),
            tx_uuid: reg.tx_uuid.clone(),
            mtid: reg.mtid.clone(),
            callback,
            callback_tx: cb_tx.clone(),
            monri_uuid,
            card_token: card,
            markers: vec![],
        };
        let mut markers: Vec<String> = [
            "Acme",
            "Zebulon",
            "Quixotica",
            "acme-secret.example",
            "demo-shop-cards",
            "demo-shop-public",
            "demo-outlet",
            "shop-api",
            "outlet-api",
            ACME_MONRI_TOKEN,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        markers.extend([
            a.guid.clone(),
            a.ident.clone(),
            a.payment_token.clone(),
            a.tx_uuid.clone(),
            a.mtid.clone(),
            a.monri_uuid.clone(),
            a.card_token.clone(),
            a.callback.clone(),
            a.callback_tx.clone(),
        ]);
        // Every id of every Acme row.
        for (table, filter) in [
            ("tenants", format!("WHERE path LIKE '{acme_path}%'")),
            (
                "merchants",
                format!("WHERE tenant_path LIKE '{acme_path}%'"),
            ),
            ("users", format!("WHERE scope_path LIKE '{acme_path}%'")),
            (
                "containers",
                format!("WHERE tenant_path LIKE '{acme_path}%'"),
            ),
            (
                "connectors",
                format!("WHERE tenant_path LIKE '{acme_path}%'"),
            ),
            (
                "api_users",
                format!("WHERE tenant_path LIKE '{acme_path}%'"),
            ),
            (
                "profiles",
                format!(
                    "WHERE container_id IN (SELECT id FROM containers WHERE tenant_path LIKE '{acme_path}%')"
                ),
            ),
            (
                "instruments",
                format!("WHERE connector_id IN ({acme_connectors})"),
            ),
        ] {
            markers.extend(ids_of(&app, table, &filter));
        }
        a.markers = markers;
        a
    };
    let before = acme_rows(&app, &acme_path, &acme_connectors);

    // The table covers exactly the app's routes.
    let cases = sweep(&a, &g);
    let covered: BTreeSet<(String, String)> = cases
        .iter()
        .map(|c| (c.route.0.to_string(), c.route.1.to_string()))
        .collect();
    let routes: BTreeSet<(String, String)> = crate::routes::all()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        covered, routes,
        "the isolation sweep's table differs from the app's routes: list the new route in sweep()"
    );
    for c in &cases {
        assert_eq!(c.method, c.route.0);
    }

    // The Globex callers.
    let manager = client();
    let clerk = client();
    let login = async |b: &reqwest::Client, user: &str| -> String {
        let page = b
            .get(app.url("/login"))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("page");
        let t = extract_csrf(&page).expect("csrf");
        let r = b
            .post(app.url("/login"))
            .form(&[
                ("csrf_token", t.as_str()),
                ("username", user),
                ("password", "globex-password-1"),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "login {user}");
        let page = b
            .get(app.url("/account/password"))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("page");
        extract_csrf(&page).expect("csrf")
    };
    let manager_csrf = login(&manager, "globex-boss").await;
    let clerk_csrf = login(&clerk, "globex-clerk").await;
    let api = basic(GLOBEX_API.0, GLOBEX_API.1);

    let mut failures = vec![];
    let mut check = |who: &str, c: &Case, status: u16, body: &str, extra_ok: &[u16]| {
        let request = format!(
            "{} {}",
            c.path,
            match &c.body {
                Some(Body::Form(f)) => format!("{f:?}"),
                Some(Body::Json(v)) => v.to_string(),
                None => String::new(),
            }
        );
        println!("{who:>22} {status} {} {}", c.method, c.path);
        if !(c.expect.contains(&status) || extra_ok.contains(&status)) {
            failures.push(format!(
                "{who} {} {}: {status}, expected {:?} ({}): {}",
                c.method,
                c.path,
                c.expect,
                c.why,
                &body[..body.len().min(300)]
            ));
        }
        let lower = body.to_lowercase();
        for m in &a.markers {
            if !request.to_lowercase().contains(&m.to_lowercase())
                && lower.contains(&m.to_lowercase())
            {
                failures.push(format!(
                    "{who} {} {}: the answer holds Acme's {m:?}",
                    c.method, c.path
                ));
            }
        }
    };
    // Each case, and its twin: the same request with every Acme identifier replaced by a fresh
    // one of the same shape that exists nowhere. The answers must be the same.
    let twins = twin_values(&a);
    let mut sent = 0;
    let mut twinned = 0;
    let mut differences = vec![];
    for c in &cases {
        let twin = twin_of(c, &twins);
        let anon = client();
        let callers: Vec<Who<'_>> = match c.caller {
            Caller::Console => vec![
                (
                    "globex tenant manager",
                    &manager,
                    None,
                    Some(manager_csrf.clone()),
                    &[403],
                ),
                (
                    "globex merchant admin",
                    &clerk,
                    None,
                    Some(clerk_csrf.clone()),
                    &[403],
                ),
            ],
            Caller::Api => vec![("globex-api", &app.client, Some(api.as_str()), None, &[])],
            Caller::Monri => vec![(
                "globex monri",
                &app.client,
                Some(globex_bearer.as_str()),
                None,
                &[],
            )],
            Caller::Anonymous => {
                // A browser of its own, with a CSRF token of its own.
                let page = anon
                    .get(app.url("/login"))
                    .send()
                    .await
                    .expect("GET")
                    .text()
                    .await
                    .expect("page");
                let t = extract_csrf(&page).expect("csrf");
                vec![("anonymous", &anon, None, Some(t), &[])]
            }
        };
        for (who, http, auth, csrf, extra_ok) in callers {
            // A merchant admin may not manage tenants, merchants, users, containers…
            let (s, body) = send(&app, http, c, auth, csrf.as_deref()).await;
            check(who, c, s, &body, extra_ok);
            sent += 1;
            if let Some(t) = &twin {
                let (ts, tbody) = send(&app, http, t, auth, csrf.as_deref()).await;
                twinned += 1;
                if (s, answer_kind(&body)) != (ts, answer_kind(&tbody)) {
                    differences.push(format!(
                        "{who} {} {}: {s} {:?}, but {ts} {:?} for an id that does not exist",
                        c.method,
                        c.path,
                        answer_kind(&body),
                        answer_kind(&tbody)
                    ));
                }
            }
        }
    }
    failures.extend(differences);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(twinned > 60, "{twinned} twins");
    assert!(sent > cases.len());

    // getProfile answers an Acme profile exactly as a profile that does not exist.
    for key in [
        json!({"profileGuid": a.guid}),
        json!({"customerIdentification": a.ident}),
    ] {
        let unknown = match key.get("profileGuid") {
            Some(_) => json!({"profileGuid": coffer::gateway::ids::profile_guid()}),
            None => json!({"customerIdentification": "no-such-customer"}),
        };
        let mut answers = vec![];
        for body in [key, unknown] {
            let r = app
                .client
                .post(app.url("/api/v3/customerProfiles/demo-globex-cards/getProfile"))
                .header("authorization", api.as_str())
                .header("content-type", JSON_CT)
                .body(body.to_string())
                .send()
                .await
                .expect("getProfile");
            answers.push((r.status(), r.json::<Value>().await.expect("json")));
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[0].1["profileExists"], false);
    }

    // Nothing of Acme's changed, and the Globex callers were logged in throughout.
    assert_eq!(before, acme_rows(&app, &acme_path, &acme_connectors));
    for b in [&manager, &clerk] {
        let r = b
            .get(app.url("/account/password"))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), StatusCode::OK, "still logged in");
    }
    // The Acme profile is still there for Acme.
    let r = app
        .client
        .post(app.url("/api/v3/customerProfiles/demo-shop-cards/getProfile"))
        .header("authorization", basic("shop-api", "shop-api-demo"))
        .header("content-type", JSON_CT)
        .body(json!({"profileGuid": a.guid}).to_string())
        .send()
        .await
        .expect("getProfile");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["customer"]["firstName"], "Zebulon", "{v}");
}
