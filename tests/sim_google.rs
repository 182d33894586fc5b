//! The Google Workspace Directory simulator (src/sim/google) over raw HTTP: the token
//! endpoint with a real RS256 key, every route, Google's refusals, paging with inserts in
//! between, quotas, faults, eventual consistency and the handle's drift. Then the same
//! walks (`listing_walk`, `users_walk`, `groups_walk`, `refusals`) through Stoplight Prism
//! in proxy mode (`--errors`) with Google's description
//! (`tests/specs/google/admin.directory_v1.openapi.json`), which must object to nothing;
//! the few requests Prism itself would refuse (wrong types, sizes out of range) are sent
//! to the simulator directly.
//!
//! Prism is required, never skipped: `.peers/prism/node_modules/.bin/prism` under the repo
//! root, or `ACCESSDESK_PRISM`. The token endpoint is not in the description: tokens come
//! from the simulator directly.

#[path = "common/prism.rs"]
mod prism;

use accessdesk::sim::SimServer;
use accessdesk::sim::fault::FaultProfile;
use accessdesk::sim::google::scopes::{CLOUD_PLATFORM, GROUP, USER, USER_READONLY};
use accessdesk::sim::google::{
    self, BodyFault, Deprecation, FailRule, GOOGLE_TOKEN_URL, GoogleHandle, GoogleSimOptions,
};
use axum::http::Method;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SA: &str = "provisioner@accessdesk-sim.iam.gserviceaccount.com";
const USERS: &str = "/admin/directory/v1/users";
const GROUPS: &str = "/admin/directory/v1/groups";
const KEY: &str = "test-rsa-private.pem";
const NO: Option<Value> = None;
// Expected answers: "status", "status reason" or "status reason: message".
const OK: &str = "200";
const GONE: &str = "204";
const NO_USER: &str = "404 notFound: Resource Not Found: userKey";
const NO_GROUP: &str = "404 notFound: Resource Not Found: groupKey";
const NO_MEMBER: &str = "404 notFound: Resource Not Found: memberKey";
const EXISTS: &str = "409 duplicate: Entity already exists.";
const FORBIDDEN: &str = "403 forbidden: Not Authorized to access this resource/api";
const INVALID: &str = "400 invalid";
const QPM: &str = "403 userRateLimitExceeded";
const UNSETTLED: &str = "412 conditionNotMet: User creation is not complete.";
const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
const BAD_AUDIENCE: &str = "Invalid JWT: Failed audience check. The expected audience is https://oauth2.googleapis.com/token.";
const UNAUTHORIZED_CLIENT: &str = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.";

/// `check!(sim, METHOD, path, body, want)`: one Directory call whose status, Google error
/// reason and message must be as `want` says; evaluates to the answer.
macro_rules! check {
    ($sim:expr, $method:expr, $path:expr, $body:expr, $want:expr) => {
        $sim.check($method, &$path, $body, $want).await
    };
}

fn fixture(name: &str) -> String {
    let p = format!("{}/tests/fixtures/okta/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {p}: {e}"))
}

fn now() -> u64 {
    let t = SystemTime::now().duration_since(UNIX_EPOCH);
    t.unwrap().as_secs()
}

/// A service account's assertion signed with the fixture `key`, its claims `change`d.
fn assertion(key: &str, sub: &str, scope: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut claims = json!({"iss": SA, "sub": sub, "scope": scope, "aud": GOOGLE_TOKEN_URL,
                            "iat": now(), "exp": now() + 3600});
    change(&mut claims);
    let key = EncodingKey::from_rsa_pem(fixture(key).as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

fn none(_: &mut Value) {}

/// No faults but what `change` sets.
fn profile(change: impl FnOnce(&mut FaultProfile)) -> FaultProfile {
    let mut p = FaultProfile::none();
    change(&mut p);
    p
}

/// One answer: status, headers, JSON body (Null when empty or not JSON).
struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    /// The status and Google's error reason ("" for an answer without one).
    fn refusal(&self) -> (u16, &str) {
        (self.status, self.str("/error/errors/0/reason"))
    }

    fn message(&self) -> &str {
        self.str("/error/message")
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    /// How many items the listing holds under `field` (0 when Google leaves it out).
    fn count(&self, field: &str) -> usize {
        self.body[field].as_array().map_or(0, Vec::len)
    }

    fn str(&self, pointer: &str) -> &str {
        let v = self.body.pointer(pointer).and_then(Value::as_str);
        v.unwrap_or("")
    }

    /// "status", "status reason" or "status reason: message", as `want` gives them.
    fn says(&self, want: &str) -> String {
        let (reason, message) = (self.refusal().1, self.message());
        match (want.contains(": "), want.contains(' ')) {
            (true, _) => format!("{} {reason}: {message}", self.status),
            (false, true) => format!("{} {reason}", self.status),
            _ => self.status.to_string(),
        }
    }
}

fn http() -> reqwest::Client {
    accessdesk::adapters::http::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn send(rb: reqwest::RequestBuilder) -> Resp {
    let r = rb.send().await.expect("request");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let bytes = r.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
    }
}

/// A Directory call with a bearer token.
async fn call(base: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
    let url = format!("{base}{path}");
    let mut rb = http()
        .request(method.parse().unwrap(), url)
        .bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    send(rb).await
}

async fn token_call(base: &str, assertion: &str) -> Resp {
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let form = [("grant_type", grant), ("assertion", assertion)];
    send(http().post(format!("{base}/token")).form(&form)).await
}

/// A token for `sub` with these scopes, through the token endpoint.
async fn token(base: &str, sub: &str, scope: &str) -> String {
    let r = token_call(base, &assertion(KEY, sub, scope, none)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.str("/access_token").to_string()
}

struct Sim {
    server: SimServer,
    h: GoogleHandle,
    /// The simulator itself (the token endpoint).
    base: String,
    /// Where Directory calls go: the simulator, or Prism in front of it.
    api: String,
    admin: String,
    /// Users and groups, read and write, for the admin.
    token: String,
}

impl Sim {
    async fn start(opts: GoogleSimOptions) -> Sim {
        let (server, h) = google::spawn(opts).await.expect("sim");
        let public = fixture("test-rsa-public.pem");
        h.register_service_account(SA, &public, &[USER, USER_READONLY, GROUP]);
        let (base, admin) = (server.base_url(), h.admin_email());
        let token = token(&base, &admin, &format!("{USER} {GROUP}")).await;
        let api = base.clone();
        Sim {
            server,
            h,
            base,
            api,
            admin,
            token,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        call(&self.api, &self.token, method, path, body).await
    }

    /// Call, and check the answer against `want` (see [`Resp::says`]).
    async fn check(&self, method: &str, path: &str, body: Option<Value>, want: &str) -> Resp {
        let r = self.call(method, path, body).await;
        assert_eq!(r.says(want), want, "{method} {path}: {}", r.body);
        r
    }

    fn me(&self) -> String {
        format!("{USERS}/{}", self.admin)
    }
}

/// A users.insert body for `local@example.com` with an HR id and the fields the adapter
/// will set.
fn user(local: &str, employee: &str) -> Option<Value> {
    Some(json!({
        "primaryEmail": format!("{local}@example.com"),
        "name": {"givenName": "Ada", "familyName": format!("Lovelace {employee}")},
        "password": "correct horse battery",
        "externalIds": [{"value": employee, "type": "organization"}],
        "organizations": [{"department": "Engineering", "title": "Engineer",
                           "costCenter": "CC1", "location": "London", "primary": true}],
        "relations": [{"value": "boss@example.com", "type": "manager"}],
        "changePasswordAtNextLogin": true,
    }))
}

/// `user(local, employee)` with one field changed.
fn user_with(local: &str, field: &str, value: Value) -> Option<Value> {
    let mut u = user(local, "E0");
    if let Some(u) = u.as_mut() {
        u[field] = value;
    }
    u
}

/// Follow `nextPageToken` from `path` (which has a `?`): every item's `key` under
/// `field`, in order; `between` runs after the first page.
async fn walk(sim: &Sim, path: &str, key: &str, mut between: impl AsyncFnMut()) -> Vec<String> {
    let kinds = ["users", "groups", "members"];
    let field = kinds
        .into_iter()
        .rfind(|f| path.contains(f))
        .unwrap_or("users");
    let (mut out, mut next) = (Vec::new(), String::new());
    for page in 0.. {
        let r = check!(sim, "GET", format!("{path}&pageToken={next}"), NO, OK);
        let items = r.body[field].as_array().into_iter().flatten();
        out.extend(items.map(|i| i[key].as_str().unwrap_or("").to_string()));
        if page == 0 {
            between().await;
        }
        match r.body["nextPageToken"].as_str() {
            Some(t) => next = t.to_string(),
            None => break,
        }
    }
    out
}

/// The token endpoint refuses `assertion` with this status and description.
async fn refused(base: &str, assertion: String, status: u16, description: &str) {
    let r = token_call(base, &assertion).await;
    let error = ["invalid_grant", "unauthorized_client"][usize::from(status == 401)];
    assert_eq!((r.status, r.str("/error")), (status, error), "{}", r.body);
    assert_eq!(r.str("/error_description"), description);
}

#[tokio::test]
async fn the_token_endpoint_grants_delegated_tokens_and_refuses_as_google_does() {
    let sim = Sim::start(GoogleSimOptions::default()).await;
    let (b, admin) = (sim.base.as_str(), sim.admin.as_str());
    let r = token_call(b, &assertion(KEY, admin, USER, none)).await;
    assert_eq!((r.status, r.body["expires_in"].as_u64()), (200, Some(3599)));
    assert_eq!(r.str("/token_type"), "Bearer");
    assert!(r.str("/access_token").starts_with("ya29."));
    // The simulator's own URL is an accepted audience too.
    let own = json!(format!("{b}/token"));
    let a = assertion(KEY, admin, USER, |c| c["aud"] = own);
    assert_eq!(token_call(b, &a).await.status, 200);

    let other = "test-rsa-other-private.pem";
    let signed = |c: fn(&mut Value)| assertion(KEY, admin, USER, c);
    let foreign = assertion(other, admin, USER, none);
    refused(b, foreign, 400, "Invalid JWT Signature.").await;
    let nobody = assertion(KEY, "nobody@example.com", USER, none);
    refused(b, nobody, 400, "Invalid email or User ID").await;
    let long = signed(|c| c["exp"] = json!(now() + 7200));
    refused(b, long, 400, SHORT_LIVED).await;
    let elsewhere = signed(|c| c["aud"] = json!("https://example.com/token"));
    refused(b, elsewhere, 400, BAD_AUDIENCE).await;
    let undelegated = assertion(KEY, admin, &format!("{USER} {CLOUD_PLATFORM}"), none);
    refused(b, undelegated, 401, UNAUTHORIZED_CLIENT).await;
    let wrong = [("grant_type", "client_credentials")];
    let r = send(http().post(format!("{b}/token")).form(&wrong)).await;
    assert_eq!((r.status, r.str("/error")), (400, "unsupported_grant_type"));
    assert_eq!(sim.h.token_requests(), 9);

    // Missing, unknown, expired and revoked tokens: 401 with WWW-Authenticate.
    let r = send(http().get(format!("{b}{}", sim.me()))).await;
    assert_eq!(r.refusal(), (401, "required"), "{}", r.body);
    assert!(r.header("www-authenticate").starts_with("Bearer realm="));
    let get = |t: String| {
        let (base, path) = (b.to_string(), sim.me());
        async move { call(&base, &t, "GET", &path, None).await }
    };
    let r = get("ya29.made-up".into()).await;
    assert_eq!(r.says(": "), "401 authError: Invalid Credentials");
    assert_eq!(r.str("/error/status"), "UNAUTHENTICATED");
    let www = r.header("www-authenticate");
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    sim.h.set_token_ttl(Duration::from_secs(1));
    let short = token(b, admin, USER).await;
    assert_eq!(get(short.clone()).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(short).await.says(" "), "401 authError", "expired");
    assert_eq!(get(sim.token.clone()).await.status, 200);
    sim.h.revoke_access_tokens();
    let revoked = get(sim.token.clone()).await;
    assert_eq!(revoked.says(" "), "401 authError");

    // A read-only token cannot write; the header names the scope that would do.
    sim.h.set_token_ttl(Duration::from_secs(3600));
    let ro = token(b, admin, USER_READONLY).await;
    assert_eq!(get(ro.clone()).await.status, 200);
    let r = call(b, &ro, "POST", USERS, user("x", "E1")).await;
    let scope = "Request had insufficient authentication scopes.";
    let want = format!("403 insufficientPermissions: {scope}");
    assert_eq!(r.says(": "), want);
    let www = r.header("www-authenticate");
    assert!(www.contains("insufficient_scope"), "{www}");
    assert!(www.contains(USER), "{www}");
    let groups = format!("{GROUPS}?customer=my_customer");
    let r = call(b, &ro, "GET", &groups, None).await;
    assert_eq!(r.refusal(), (403, "insufficientPermissions"));
    assert!(sim.h.user("x@example.com").is_none());

    // Delegation to someone who is not an admin, or to nobody: a token, then 403.
    sim.h.seed_user("plain@example.com", "Plain", "U").unwrap();
    let plain = token(b, "plain@example.com", USER).await;
    assert_eq!(get(plain).await.says(": "), FORBIDDEN);
    let a = assertion(KEY, "", USER, |c| c["sub"] = Value::Null);
    let nobody = token_call(b, &a).await.str("/access_token").to_string();
    assert_eq!(get(nobody).await.says(": "), FORBIDDEN);
    sim.server.stop().await;
}

/// users.insert, get, patch, update and delete, and their refusals.
async fn users_walk(sim: &Sim) {
    let r = check!(sim, "POST", USERS, user("ada", "E1"), OK);
    let (u, id) = (&r.body, r.str("/id").to_string());
    assert!(id.len() == 21 && id.bytes().all(|c| c.is_ascii_digit()));
    assert_eq!(u["kind"], "admin#directory#user");
    assert_eq!(u["name"]["fullName"], "Ada Lovelace E1");
    let hr = json!([{"value": "E1", "type": "organization"}]);
    assert_eq!(u["externalIds"], hr);
    assert_eq!(u["organizations"][0]["costCenter"], "CC1");
    assert_eq!(u["relations"][0]["type"], "manager");
    let flags = ["isAdmin", "suspended", "agreedToTerms"].map(|f| u[f].as_bool());
    assert_eq!(flags, [Some(false); 3]);
    assert_eq!(r.str("/orgUnitPath"), "/");
    assert_eq!(r.str("/customerId"), sim.h.customer_id());
    assert_eq!(u["lastLoginTime"], "1970-01-01T00:00:00.000Z", "never");
    assert!(u["etag"].is_string() && u["creationTime"].is_string());
    assert!(u.get("password").is_none() && !u.to_string().contains("horse"));

    // Already there (the e-mail compared case-insensitively), elsewhere, invalid, not JSON.
    let upper = user_with("ada", "primaryEmail", json!("ADA@Example.com"));
    let r = check!(sim, "POST", USERS, upper, EXISTS);
    assert_eq!(r.str("/error/status"), "ALREADY_EXISTS");
    let elsewhere = user_with("ada", "primaryEmail", json!("ada@elsewhere.org"));
    check!(sim, "POST", USERS, elsewhere, FORBIDDEN);
    let no_given = json!({"givenName": "", "familyName": "L"});
    let email = "Invalid Input: primary_user_email";
    for (field, value, message) in [
        ("name", no_given, "Invalid Given/Family Name: GivenName"),
        ("password", json!("short"), "Invalid Password"),
        ("primaryEmail", json!("x@"), email),
    ] {
        let want = format!("{INVALID}: {message}");
        check!(sim, "POST", USERS, user_with("bad", field, value), &want);
    }
    assert_eq!(sim.h.creates_for("ada@example.com"), 1);
    assert_eq!(sim.h.max_creates(), 1);

    // Read by e-mail (any case) or id; a missing user is 404 notFound.
    for key in ["ada@example.com", "Ada@EXAMPLE.com", id.as_str()] {
        let r = check!(sim, "GET", format!("{USERS}/{key}"), NO, OK);
        assert_eq!(r.str("/id"), id);
    }
    let ghost = format!("{USERS}/ghost@example.com");
    check!(sim, "GET", ghost, NO, NO_USER);

    // Patch merges, suspends with reason ADMIN, and cannot clear a repeated field.
    let path = format!("{USERS}/{id}");
    let change = json!({"suspended": true, "name": {"givenName": "Augusta"},
                        "externalIds": []});
    let r = check!(sim, "PATCH", path, Some(change), OK);
    assert_eq!(r.body["suspended"], true);
    assert_eq!(r.str("/suspensionReason"), "ADMIN");
    assert_eq!(r.str("/name/fullName"), "Augusta Lovelace E1");
    assert_eq!(r.str("/externalIds/0/value"), "E1", "patch cannot clear");
    let before = r.body["etag"].clone();
    // Update: the same merge; null clears; the primary e-mail can change.
    let change = json!({"suspended": false, "externalIds": null, "orgUnitPath": "/Eng",
                        "primaryEmail": "augusta@example.com"});
    let r = check!(sim, "PUT", path, Some(change), OK);
    assert!(r.body.get("suspensionReason").is_none());
    assert!(r.body.get("externalIds").is_none());
    assert_eq!(r.str("/orgUnitPath"), "/Eng");
    assert_eq!(r.str("/primaryEmail"), "augusta@example.com");
    assert_ne!(r.body["etag"], before);
    check!(sim, "GET", format!("{USERS}/ada@example.com"), NO, NO_USER);
    let taken = Some(json!({ "primaryEmail": sim.admin }));
    check!(sim, "PUT", path, taken, EXISTS);
    check!(sim, "PATCH", ghost, Some(json!({})), NO_USER);

    let r = check!(sim, "DELETE", path, NO, GONE);
    assert_eq!(r.body, Value::Null);
    check!(sim, "DELETE", path, NO, NO_USER);
    assert!(sim.h.user(&id).is_none());
}

#[tokio::test]
async fn users_are_created_read_changed_and_deleted_with_google_s_answers() {
    let sim = Sim::start(GoogleSimOptions::default()).await;
    users_walk(&sim).await;
    // What Prism would refuse before it reached Google: a wrong type, broken JSON.
    let yes = Some(json!({"suspended": "yes"}));
    let r = check!(sim, "PUT", sim.me(), yes, INVALID);
    let why = "Invalid value at 'user.suspended' (TYPE_BOOL), \"yes\"";
    assert_eq!(r.message(), why);
    let raw = http().post(format!("{}{USERS}", sim.base));
    let raw = raw.bearer_auth(&sim.token).body("{\"primaryEmail\": ");
    assert_eq!(send(raw).await.says(" "), "400 parseError");
    sim.server.stop().await;
}

/// users.list on a fresh simulator: paging with inserts in between, orders, queries
/// and refusals.
async fn listing_walk(sim: &Sim) {
    for i in 0..7 {
        let body = user(&format!("u{i}"), &format!("E{i}"));
        check!(sim, "POST", USERS, body, OK);
    }
    // Between the first and second page one user arrives before the cursor, one after.
    let path = format!("{USERS}?customer=my_customer&maxResults=3");
    let all = walk(sim, &path, "primaryEmail", async || {
        check!(sim, "POST", USERS, user("aaron", "E90"), OK);
        check!(sim, "POST", USERS, user("zoe", "E91"), OK);
    })
    .await;
    let mut want: Vec<String> = (0..7).map(|i| format!("u{i}@example.com")).collect();
    want.insert(0, sim.admin.clone());
    want.push("zoe@example.com".into());
    // By e-mail, nobody twice; aaron came before the cursor.
    assert_eq!(all, want);
    let desc = format!("{path}&sortOrder=DESCENDING");
    let down = walk(sim, &desc, "primaryEmail", async || {}).await;
    assert_eq!(down.len(), 10);
    assert_eq!(down[0], "zoe@example.com");
    assert_eq!(down[9], "aaron@example.com");
    let family = format!("{path}&orderBy=familyName");
    let by_family = walk(sim, &family, "primaryEmail", async || {}).await;
    assert_eq!(by_family[0], sim.admin, "Admin before Lovelace");

    // query: externalId, an e-mail prefix; an empty answer leaves `users` out.
    let q = |query: &str| format!("{USERS}?customer=my_customer&query={query}");
    let r = check!(sim, "GET", q("externalId:E3"), NO, OK);
    assert_eq!(r.count("users"), 1);
    assert_eq!(r.str("/users/0/primaryEmail"), "u3@example.com");
    assert_eq!(check!(sim, "GET", q("email:u1*"), NO, OK).count("users"), 1);
    let r = check!(sim, "GET", q("email:nobody@example.com"), NO, OK);
    assert!(r.body.get("users").is_none());
    assert!(r.body.get("nextPageToken").is_none());
    let domain = format!("{USERS}?domain=example.com");
    assert_eq!(check!(sim, "GET", domain, NO, OK).count("users"), 10);

    // No customer or domain, another's, out-of-range sizes, forged tokens, unknown fields.
    let customer = |q: &str| format!("{USERS}?customer=my_customer&{q}");
    check!(sim, "GET", USERS, NO, "400 badRequest: Bad Request");
    check!(
        sim,
        "GET",
        format!("{USERS}?customer=C9"),
        NO,
        "400 badRequest"
    );
    let other = format!("{USERS}?domain=elsewhere.org");
    check!(sim, "GET", other, NO, "404 notFound: Domain not found.");
    let forged = format!("{INVALID}: Invalid Input: pageToken");
    check!(sim, "GET", customer("pageToken=forged"), NO, &forged);
    let unknown = format!("{INVALID}: Invalid Input: query");
    check!(sim, "GET", customer("query=phone:1"), NO, &unknown);
    // A users token is not a groups token.
    let two = format!("{USERS}?customer=my_customer&maxResults=2");
    let r = check!(sim, "GET", two, NO, OK);
    let t = r.str("/nextPageToken");
    let groups = format!("{GROUPS}?customer=my_customer&pageToken={t}");
    check!(sim, "GET", groups, NO, INVALID);
}

#[tokio::test]
async fn listings_page_with_opaque_tokens_and_miss_nobody_inserted_meanwhile() {
    let sim = Sim::start(GoogleSimOptions::default()).await;
    listing_walk(&sim).await;
    // Sizes out of range (Prism would refuse them before they reached Google).
    let range = "Values must be within the range: [1, 500]";
    for n in [0, 501] {
        let want = format!("{INVALID}: Invalid value '{n}'. {range}");
        let path = format!("{USERS}?customer=my_customer&maxResults={n}");
        check!(sim, "GET", path, NO, &want);
    }
    sim.server.stop().await;
}

/// groups.insert, get, list and members.insert, get, list, hasMember, delete.
async fn groups_walk(sim: &Sim) {
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = check!(sim, "POST", USERS, user(&format!("m{i}"), "E"), OK);
        ids.push(r.str("/id").to_string());
    }
    let eng = json!({"email": "eng@example.com", "name": "Engineering",
                     "description": "Builders"});
    let r = check!(sim, "POST", GROUPS, Some(eng), OK);
    assert_eq!(r.str("/kind"), "admin#directory#group");
    assert_eq!(r.str("/directMembersCount"), "0");
    let gid = r.str("/id").to_string();
    assert_eq!(gid.len(), 15);
    let g = |email: &str| Some(json!({ "email": email }));
    for name in ["ops", "sales", "legal"] {
        check!(sim, "POST", GROUPS, g(&format!("{name}@example.com")), OK);
    }
    check!(sim, "POST", GROUPS, g("ENG@example.com"), EXISTS);
    check!(sim, "POST", GROUPS, g("x@elsewhere.org"), FORBIDDEN);
    for key in ["eng@example.com", gid.as_str()] {
        let r = check!(sim, "GET", format!("{GROUPS}/{key}"), NO, OK);
        assert_eq!(r.str("/name"), "Engineering");
    }
    check!(sim, "GET", format!("{GROUPS}/no@example.com"), NO, NO_GROUP);
    let path = format!("{GROUPS}?customer=my_customer&maxResults=2");
    let names = walk(sim, &path, "email", async || {}).await;
    let want = ["eng", "legal", "ops", "sales"].map(|g| format!("{g}@example.com"));
    assert_eq!(names, want);

    // Members: by e-mail or id; twice is 409; an unknown user or group 404.
    let members = format!("{GROUPS}/eng@example.com/members");
    let m0 = Some(json!({"email": "m0@example.com", "role": "MEMBER"}));
    let r = check!(sim, "POST", members, m0.clone(), OK);
    let shape = ["/kind", "/type", "/status"].map(|p| r.str(p));
    assert_eq!(shape, ["admin#directory#member", "USER", "ACTIVE"]);
    assert_eq!(r.str("/id"), ids[0]);
    for (id, role) in [(&ids[1], "OWNER"), (&ids[2], "MEMBER")] {
        let body = Some(json!({"id": id, "role": role}));
        check!(sim, "POST", members, body, OK);
    }
    let twice = "409 duplicate: Member already exists.";
    check!(sim, "POST", members, g("M0@example.com"), twice);
    check!(sim, "POST", members, g("ghost@example.com"), NO_MEMBER);
    let nowhere = format!("{GROUPS}/no@example.com/members");
    check!(sim, "POST", nowhere, m0, NO_GROUP);
    let keyless = Some(json!({"role": "MEMBER"}));
    let want = "400 required: Missing required field: memberKey";
    check!(sim, "POST", members, keyless, want);
    let adds = sim.h.membership_adds("eng@example.com", "m0@example.com");
    assert_eq!((adds, sim.h.max_membership_adds()), (1, 1));

    let r = check!(sim, "GET", format!("{members}/m1@example.com"), NO, OK);
    assert_eq!(r.str("/role"), "OWNER");
    let has = |m: &str| format!("{GROUPS}/{gid}/hasMember/{m}@example.com");
    let r = check!(sim, "GET", has("m2"), NO, OK);
    assert_eq!(r.body, json!({"isMember": true}));
    sim.h.seed_user("loner@example.com", "Lo", "Ner").unwrap();
    let r = check!(sim, "GET", has("loner"), NO, OK);
    assert_eq!(r.body, json!({"isMember": false}));
    check!(sim, "GET", has("ghost"), NO, NO_MEMBER);
    // Listed a page at a time (in id order), by role, and a user's groups.
    let paged = format!("{members}?maxResults=2");
    let listed = walk(sim, &paged, "id", async || {}).await;
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    let owners = check!(sim, "GET", format!("{members}?roles=OWNER"), NO, OK);
    assert_eq!(owners.count("members"), 1);
    let r = check!(sim, "GET", format!("{GROUPS}/{gid}"), NO, OK);
    assert_eq!(r.str("/directMembersCount"), "3");
    let of_m1 = format!("{GROUPS}?userKey=m1@example.com");
    let r = check!(sim, "GET", of_m1, NO, OK);
    assert_eq!(r.count("groups"), 1);
    assert_eq!(r.str("/groups/0/email"), "eng@example.com");
    let ops = format!("{GROUPS}/ops@example.com/members");
    let ops = check!(sim, "GET", ops, NO, OK);
    assert!(ops.body.get("members").is_none(), "empty: left out");

    let one = format!("{members}/{}", ids[2]);
    check!(sim, "DELETE", one, NO, GONE);
    check!(sim, "DELETE", one, NO, NO_MEMBER);
    check!(sim, "GET", one, NO, NO_MEMBER);
    assert_eq!(sim.h.members("eng@example.com").len(), 2);
}

#[tokio::test]
async fn groups_and_members_follow_google_s_directory() {
    let sim = Sim::start(GoogleSimOptions::default()).await;
    groups_walk(&sim).await;
    // A group without its e-mail (Prism would refuse it before it reached Google).
    let unnamed = Some(json!({"name": "x"}));
    let want = "400 required: Missing required field: email";
    check!(sim, "POST", GROUPS, unnamed, want);
    sim.server.stop().await;
}

#[tokio::test]
async fn quotas_and_faults_answer_in_google_s_shapes() {
    // An hour-long window: no window boundary falls inside the test.
    let opts = GoogleSimOptions {
        queries_per_minute: 3,
        rate_window: Duration::from_secs(3600),
        ..Default::default()
    };
    let sim = Sim::start(opts).await;
    let me = sim.me();
    for _ in 0..3 {
        check!(sim, "GET", me, NO, OK);
    }
    let r = check!(sim, "GET", me, NO, QPM);
    assert_eq!(r.message(), google::QPM_EXCEEDED);
    assert_eq!(r.str("/error/errors/0/domain"), "usageLimits");
    for h in ["retry-after", "x-rate-limit-remaining"] {
        assert!(!r.headers.contains_key(h), "{h}");
    }
    // quotaUser is a bucket of its own; raising the limit lets the user through again.
    check!(sim, "GET", format!("{me}?quotaUser=batch-1"), NO, OK);
    assert_eq!(sim.h.limits().refused(), 1);
    sim.h.limits().set_limit(None, 1000);
    check!(sim, "GET", me, NO, OK);

    // Too many of one operation at once: 403 quotaExceeded.
    sim.h.set_concurrency_limit(1);
    let held = Duration::from_millis(300);
    let faults = sim.h.faults();
    faults.set_profile(profile(|p| p.latency = Some((held, held))));
    let (a, b) = tokio::join!(sim.call("GET", &me, NO), sim.call("GET", &me, NO));
    let mut answers = [a.says(" "), b.says(" ")];
    answers.sort();
    assert_eq!(answers, ["200 ", "403 quotaExceeded"]);
    let limit = sim.h.concurrency("directory.users.get");
    assert_eq!(limit.map(|c| c.refused()), Some(1));
    sim.h.set_concurrency_limit(0);

    // Injected: 503 backendError, a 403 burst, a 500 from a rule, Google's occasional 429.
    faults.set_profile(profile(|p| p.error_5xx_rate = 1.0));
    let r = check!(sim, "GET", me, NO, "503 backendError");
    assert_eq!(r.str("/error/status"), "UNAVAILABLE");
    faults.set_profile(FaultProfile::none());
    faults.throttle_next(1);
    check!(sim, "GET", me, NO, QPM);
    let get = Some(Method::GET);
    let rule = FailRule::new(get.clone(), USERS, BodyFault::ServerError, 1);
    sim.h.fail(rule);
    check!(sim, "GET", me, NO, "500 backendError");
    let limited = BodyFault::reject(429, "rateLimitExceeded", "Rate Limit Exceeded");
    sim.h.fail(FailRule::new(get, USERS, limited, 1));
    let r = check!(sim, "GET", me, NO, "429 rateLimitExceeded");
    assert_eq!(r.str("/error/status"), "RESOURCE_EXHAUSTED");
    check!(sim, "GET", me, NO, OK);
    sim.server.stop().await;
}

#[tokio::test]
async fn new_users_and_memberships_show_up_late_and_settle() {
    let lag = Duration::from_millis(600);
    let opts = GoogleSimOptions {
        faults: profile(|p| p.visibility_delay = lag),
        creation_settle: lag,
        ..Default::default()
    };
    let sim = Sim::start(opts).await;
    sim.h.seed_group("eng@example.com", "Engineering").unwrap();
    check!(sim, "POST", USERS, user("late", "E1"), OK);
    let late = format!("{USERS}/late@example.com");
    let listed = format!("{USERS}?customer=my_customer&query=email:late@example.com");
    assert_eq!(check!(sim, "GET", listed, NO, OK).count("users"), 0);
    check!(sim, "GET", late, NO, NO_USER);
    // Writes see the truth: a second create conflicts, a change waits for the creation.
    check!(sim, "POST", USERS, user("late", "E1"), EXISTS);
    let suspend = Some(json!({"suspended": true}));
    check!(sim, "PATCH", late, suspend.clone(), UNSETTLED);
    check!(sim, "DELETE", late, NO, UNSETTLED);
    let members = format!("{GROUPS}/eng@example.com/members");
    let body = Some(json!({"email": "late@example.com"}));
    check!(sim, "POST", members, body, OK);
    let has = format!("{GROUPS}/eng@example.com/hasMember/late@example.com");
    assert_eq!(check!(sim, "GET", has, NO, OK).body["isMember"], true);
    assert_eq!(check!(sim, "GET", members, NO, OK).count("members"), 0);
    tokio::time::sleep(lag + Duration::from_millis(100)).await;
    assert_eq!(check!(sim, "GET", listed, NO, OK).count("users"), 1);
    check!(sim, "GET", late, NO, OK);
    assert_eq!(check!(sim, "GET", members, NO, OK).count("members"), 1);
    check!(sim, "PATCH", late, suspend, OK);
    sim.server.stop().await;
}

#[tokio::test]
async fn deprecation_headers_and_drift_behind_the_adapter_s_back() {
    let sim = Sim::start(GoogleSimOptions::default()).await;
    let r = check!(sim, "GET", sim.me(), NO, OK);
    assert_eq!([r.header("deprecation"), r.header("sunset")], ["", ""]);
    let link = "https://developers.google.com/workspace/admin/directory/v1";
    sim.h.set_deprecation(Some(Deprecation {
        since: UNIX_EPOCH + Duration::from_secs(1_767_225_600),
        sunset: UNIX_EPOCH + Duration::from_secs(1_798_761_600),
        link: Some(link.into()),
    }));
    let token = token_call(&sim.base, "x").await;
    for r in [check!(sim, "GET", sim.me(), NO, OK), token] {
        assert_eq!(r.header("deprecation"), "@1767225600");
        assert_eq!(r.header("sunset"), "Fri, 01 Jan 2027 00:00:00 GMT");
        assert!(r.header("link").ends_with("rel=\"deprecation\""));
    }
    sim.h.set_deprecation(None);
    let r = check!(sim, "GET", sim.me(), NO, OK);
    assert_eq!(r.header("deprecation"), "");

    // Someone made an account by hand (no HR id), suspended another, moved memberships.
    check!(sim, "POST", USERS, user("ada", "E1"), OK);
    let h = &sim.h;
    let hand = h.create_user_by_hand("bob@example.com", "B", "H");
    let hand = hand.unwrap();
    let r = check!(sim, "GET", format!("{USERS}/{hand}"), NO, OK);
    assert!(r.body.get("externalIds").is_none());
    assert_eq!(r.body["agreedToTerms"], true);
    assert_eq!(h.user("bob@example.com").map(|u| u.via_api), Some(false));
    assert!(h.suspend_user("ada@example.com", true));
    let moved = json!({"organizations": [{"department": "Sales", "primary": true}]});
    assert!(h.update_user("ada@example.com", moved));
    let r = check!(sim, "GET", format!("{USERS}/ada@example.com"), NO, OK);
    assert_eq!(r.str("/suspensionReason"), "ADMIN");
    assert_eq!(r.str("/organizations/0/department"), "Sales");
    assert_eq!(r.str("/externalIds/0/value"), "E1");
    let ada = h.user("ada@example.com").unwrap();
    assert_eq!((ada.employee_id(), ada.suspended), (Some("E1"), true));
    h.seed_group("eng@example.com", "Engineering").unwrap();
    assert!(h.add_member("eng@example.com", "bob@example.com"));
    assert!(!h.add_member("eng@example.com", "bob@example.com"));
    let members = format!("{GROUPS}/eng@example.com/members");
    let r = check!(sim, "GET", members, NO, OK);
    assert_eq!(r.str("/members/0/email"), "bob@example.com");
    let adds = h.membership_adds("eng@example.com", "bob@example.com");
    assert_eq!(adds, 0, "not through the API");
    assert!(h.remove_member("eng@example.com", "bob@example.com"));
    assert!(h.delete_user("bob@example.com"));
    check!(sim, "GET", format!("{USERS}/{hand}"), NO, NO_USER);
    assert!(h.seed_user("x@elsewhere.org", "X", "Y").is_err());
    sim.server.stop().await;
}

/// Google's refusals through Prism: 401, 403 for scope and quota, 412, 503.
async fn refusals(sim: &Sim) {
    let me = sim.me();
    let r = call(&sim.api, "ya29.not-issued", "GET", &me, NO).await;
    assert_eq!(r.says(" "), "401 authError");
    let ro = token(&sim.base, &sim.admin, USER_READONLY).await;
    let suspend = Some(json!({"suspended": true}));
    let r = call(&sim.api, &ro, "PATCH", &me, suspend.clone()).await;
    assert_eq!(r.says(" "), "403 insufficientPermissions");
    sim.h.limits().set_limit(None, 0);
    check!(sim, "GET", me, NO, QPM);
    sim.h.limits().set_limit(None, 2400);
    sim.h.set_creation_settle(Duration::from_secs(30));
    let r = check!(sim, "POST", USERS, user("fresh", "E7"), OK);
    let fresh = format!("{USERS}/{}", r.str("/id"));
    check!(sim, "PATCH", fresh, suspend, UNSETTLED);
    sim.h.faults().throttle_next(1);
    check!(sim, "GET", me, NO, QPM);
    sim.h
        .faults()
        .set_profile(profile(|p| p.error_5xx_rate = 1.0));
    check!(sim, "GET", me, NO, "503 backendError");
    sim.h.faults().set_profile(FaultProfile::none());
}

#[test]
fn google_simulator_conforms_to_the_directory_description_through_prism() {
    accessdesk::adapters::http::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut sim = Sim::start(GoogleSimOptions::default()).await;
        let spec = "google/admin.directory_v1.openapi.json";
        let probe = "/admin/directory/v1/users?customer=my_customer";
        let rig = prism::PrismRig::start(spec, &sim.base, probe).await;
        sim.api = rig.base();
        listing_walk(&sim).await;
        users_walk(&sim).await;
        groups_walk(&sim).await;
        refusals(&sim).await;

        // Self-check: one response that breaks the User schema, one invalid request.
        let contract = rig.exchanges().len();
        let shape = BodyFault::UnexpectedShape;
        let rule = FailRule::new(Some(Method::GET), "/users/", shape, 1);
        sim.h.fail(rule);
        check!(sim, "GET", sim.me(), NO, "500");
        let bad = Some(json!({"primaryEmail": 42}));
        check!(sim, "POST", USERS, bad, "422");
        let probes = rig.exchanges().split_off(contract);
        assert_eq!(probes.len(), 2);
        for p in &probes {
            assert!(p.violation.is_some(), "the recorder missed it: {p:?}");
        }

        let exchanges = rig.exchanges()[..contract].to_vec();
        let violations = prism::violations(&exchanges, |_| false);
        assert!(
            violations.is_empty(),
            "Prism reported {} violation(s) of Google's description:\n{}\n\nPrism log:\n{}",
            violations.len(),
            violations.join("\n"),
            rig.prism.log_tail()
        );
        let covered: BTreeSet<&str> = exchanges
            .iter()
            .filter(|x| x.status < 300)
            .filter_map(|x| {
                let path = x.path.split('?').next().unwrap_or("");
                google::operation(&x.method.parse().ok()?, path)
            })
            .collect();
        for op in google::OPERATIONS {
            assert!(covered.contains(op), "{op} never went through: {covered:?}");
        }
        let statuses: BTreeSet<u16> = exchanges.iter().map(|x| x.status).collect();
        for s in [200, 204, 400, 401, 403, 404, 409, 412, 503] {
            assert!(statuses.contains(&s), "no {s} was validated: {statuses:?}");
        }
        let (n, ops) = (exchanges.len(), covered.len());
        eprintln!("google conformance: {n} exchanges, {ops} operations, {statuses:?}");
        rig.stop().await;
        sim.server.stop().await;
    });
}
