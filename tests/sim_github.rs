//! The GitHub simulator, walked over raw HTTP: tokens and GitHub App auth, every route,
//! invitations from pending to accepted or expired, paging, 404s and 422s, the primary
//! and secondary rate limits, versions and deprecation, eventual consistency.
//!
//! The same walk runs twice: straight at the simulator, and through Stoplight Prism in
//! proxy mode (`--errors`) with GitHub's description (`tests/specs/github/`), which must
//! report no violation in either direction (see `conformance_through_prism`; one narrow
//! gap in the description is allowed, see `allowed`). What the description does not
//! declare (a 401 or a rate-limit 403 on some operations, 400 and 410 for versions, 429,
//! 503) is checked in `raw_only`, straight at the simulator.
//!
//! Prism is required, never skipped (`ACCESSDESK_PRISM` or `.peers/prism`).

#[path = "common/prism.rs"]
mod prism;

use accessdesk::sim::SimServer;
use accessdesk::sim::fault::FaultProfile;
use accessdesk::sim::github::{
    self, ADMIN_LOGIN, BodyFault, FailRule, GitHubHandle, GitHubSimOptions, OrgRole, TeamRole,
    TokenInfo,
};
use axum::http::Method;
use chrono::{TimeZone, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

/// Test-only tokens: the owner's classic token, a fine-grained read-only one that expires,
/// a classic token of a plain member.
const ADMIN_TOKEN: &str = "ghp_simAdminTokenForTheGitHubTests000000";
const READER_TOKEN: &str = "github_pat_11SIMREADER_0000000000000000000";
const MEMBER_TOKEN: &str = "ghp_simPlainMemberTokenForTests000000000";
const APP_ID: u64 = 4242;
const GET: Method = Method::GET;
const PUT: Method = Method::PUT;
const POST: Method = Method::POST;
const DELETE: Method = Method::DELETE;
const NONE: Value = Value::Null;

fn fixture(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/okta");
    std::fs::read_to_string(dir.join(name)).expect("test key")
}

/// A GitHub App JWT issued `iat` seconds from now, expiring `exp` seconds from now.
fn app_jwt(iat: i64, exp: i64) -> String {
    let now = Utc::now().timestamp();
    let claims = json!({"iss": APP_ID.to_string(), "iat": now + iat, "exp": now + exp});
    let key = EncodingKey::from_rsa_pem(fixture("test-rsa-private.pem").as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).expect("jwt")
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A string member of the body ("" when missing).
    fn s(&self, key: &str) -> &str {
        self.body[key].as_str().unwrap_or("")
    }

    /// The status, `state` and `role` (a membership).
    fn sr(&self) -> (u16, &str, &str) {
        (self.status, self.s("state"), self.s("role"))
    }

    fn id(&self) -> u64 {
        self.body["id"].as_u64().expect("an id")
    }

    fn logins(&self) -> BTreeSet<String> {
        let items = self.body.as_array().into_iter().flatten();
        items
            .map(|u| u["login"].as_str().unwrap_or("").into())
            .collect()
    }

    /// The path and query of the `rel="next"` link (the walk keeps its own base, so that
    /// pages go through Prism too).
    fn next(&self) -> Option<String> {
        let link = self.header("link")?;
        let next = link.split(", ").find(|l| l.ends_with("rel=\"next\""))?;
        let url = next.split(['<', '>']).nth(1)?;
        let rest = url.split_once("://")?.1;
        Some(rest[rest.find('/')?..].to_string())
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    version: Option<String>,
}

impl Api {
    fn new(base: &str) -> Api {
        Api {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: base.to_string(),
            token: Some(ADMIN_TOKEN.into()),
            version: Some("2022-11-28".into()),
        }
    }

    fn as_token(&self, token: &str) -> Api {
        let mut api = self.clone();
        api.token = Some(token.to_string());
        api
    }

    /// `X-GitHub-Api-Version` (None: left out).
    fn version(&self, version: Option<&str>) -> Api {
        let mut api = self.clone();
        api.version = version.map(str::to_string);
        api
    }

    /// Send a request (`body` Null: none).
    async fn send(&self, method: Method, path: &str, body: Value) -> Resp {
        let url = format!("{}{path}", self.base);
        let mut rb = self.http.request(method, url);
        rb = rb.header("accept", "application/vnd.github+json");
        if let Some(t) = &self.token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        if let Some(v) = &self.version {
            rb = rb.header("x-github-api-version", v);
        }
        if !body.is_null() {
            rb = rb.json(&body);
        }
        let r = rb.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let bytes = r.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(GET, path, NONE).await
    }

    /// Send, and check the status.
    async fn x(&self, method: Method, path: &str, body: Value, status: u16) -> Resp {
        let m = method.clone();
        let r = self.send(method, path, body).await;
        assert_eq!(r.status, status, "{m} {path}: {}", r.body);
        r
    }

    /// Several requests and the statuses they must get.
    async fn all_x(&self, calls: &[(Method, &str, Value, u16)]) {
        for (method, path, body, status) in calls {
            self.x(method.clone(), path, body.clone(), *status).await;
        }
    }

    /// Every item of a listing, following `next`: their logins (or slugs), how many, and
    /// how many pages it took.
    async fn all(&self, path: &str) -> (BTreeSet<String>, usize, usize) {
        let (mut items, mut pages) = (Vec::new(), 0);
        let mut at = Some(path.to_string());
        while let Some(p) = at {
            let r = self.x(GET, &p, NONE, 200).await;
            items.extend(r.body.as_array().expect("array").iter().cloned());
            pages += 1;
            at = r.next();
        }
        let name = |i: &Value| i["login"].as_str().or(i["slug"].as_str()).map(String::from);
        let names = items.iter().filter_map(name).collect();
        (names, items.len(), pages)
    }
}

type Expiry = Option<chrono::DateTime<Utc>>;

fn token(login: &str, scopes: &[&str], expires_at: Expiry) -> TokenInfo {
    let scopes = scopes.iter().map(|s| s.to_string()).collect();
    let login = login.to_string();
    TokenInfo {
        scopes,
        expires_at,
        login,
    }
}

/// Users: mona, hubot, octocat (a member), seven developers (members), token owners.
fn seed(sim: &GitHubHandle) {
    sim.seed_user("mona", 101, Some("mona@example.com"))
        .unwrap();
    sim.seed_user("hubot", 102, None).unwrap();
    sim.seed_user("octocat", 103, None).unwrap();
    sim.add_member("octocat", OrgRole::Member).unwrap();
    for i in 1..=7 {
        let login = format!("dev{i:02}");
        sim.seed_user(&login, 200 + i, None).unwrap();
        sim.add_member(&login, OrgRole::Member).unwrap();
    }
    sim.set_two_factor("dev07", false);
    let admin = token(ADMIN_LOGIN, &["admin:org", "repo"], None);
    sim.add_token(ADMIN_TOKEN, admin);
    let expiry = Utc.with_ymd_and_hms(2099, 1, 31, 12, 0, 0).unwrap();
    let reader = token(ADMIN_LOGIN, &["members:read"], Some(expiry));
    sim.add_token(READER_TOKEN, reader);
    sim.add_token(MEMBER_TOKEN, token("octocat", &["admin:org"], None));
}

/// A fresh owner with a classic token, for rate-limit checks on their own counters.
fn owner_token(sim: &GitHubHandle, login: &str, id: u64) -> String {
    sim.seed_user(login, id, None).unwrap();
    sim.add_member(login, OrgRole::Admin).unwrap();
    let t = format!("ghp_{login}0000000000000000000000000000");
    sim.add_token(&t, token(login, &["admin:org"], None));
    t
}

/// Every route, through whatever `api` points at. Only statuses GitHub's description
/// declares for each operation.
async fn walk(api: &Api, sim: &GitHubHandle) {
    // Users.
    let r = api.x(GET, "/users/mona", NONE, 200).await;
    assert_eq!((r.id(), r.s("email")), (101, "mona@example.com"));
    let r = api.x(GET, "/user", NONE, 200).await;
    assert_eq!(r.s("login"), ADMIN_LOGIN);
    assert_eq!(r.header("x-oauth-scopes"), Some("admin:org, repo"));
    let version = r.header("x-github-api-version-selected");
    assert_eq!(version, Some("2022-11-28"));
    let request_id = r.header("x-github-request-id").unwrap_or("");
    assert_eq!(request_id.split(':').count(), 5, "{request_id}");

    // Members: 9 (the owner, octocat, dev01-07), three a page; role and 2FA filters.
    let (members, n, pages) = api.all("/orgs/acme/members?per_page=3").await;
    assert_eq!((members.len(), n, pages), (9, 9, 3), "{members:?}");
    let r = api.get("/orgs/acme/members?per_page=3&page=2").await;
    for h in ["limit", "remaining", "used", "reset"] {
        let v = r.header(&format!("x-ratelimit-{h}")).unwrap_or("");
        assert!(v.parse::<u64>().is_ok(), "x-ratelimit-{h}: {v}");
    }
    assert_eq!(r.header("x-ratelimit-resource"), Some("core"));
    let accepted = r.header("x-accepted-oauth-scopes");
    assert_eq!(accepted, Some("admin:org, read:org, repo, user, write:org"));
    let link = r.header("link").unwrap_or("");
    for rel in ["prev", "next", "last", "first"] {
        assert!(link.contains(&format!("rel=\"{rel}\"")), "{link}");
    }
    let admins = api.get("/orgs/acme/members?role=admin").await;
    assert_eq!(admins.logins(), set(&[ADMIN_LOGIN]));
    let no2fa = api.get("/orgs/acme/members?filter=2fa_disabled").await;
    assert_eq!(no2fa.logins(), set(&["dev07"]));
    api.all_x(&[
        (GET, "/users/nobody-here", NONE, 404),
        (GET, "/orgs/acme/members/octocat", NONE, 204),
        (GET, "/orgs/acme/members/mona", NONE, 404),
        (GET, "/orgs/elsewhere/memberships/mona", NONE, 404),
        (GET, "/orgs/acme/memberships/hubot", NONE, 404),
    ])
    .await;

    // Org membership: invitation first (pending), then accepted (active).
    let mona = "/orgs/acme/memberships/mona";
    let r = api.x(PUT, mona, json!({"role": "member"}), 200).await;
    assert_eq!(r.sr(), (200, "pending", "member"));
    assert_eq!(r.body["user"]["login"], "mona");
    let r = api.x(PUT, mona, json!({"role": "admin"}), 200).await;
    assert_eq!(r.sr(), (200, "pending", "admin"));
    // A second PUT does not invite again.
    assert_eq!(sim.invitations_for("mona"), 1);
    assert_eq!(api.get(mona).await.sr(), (200, "pending", "admin"));
    let invited = api.get("/orgs/acme/invitations").await;
    assert!(invited.logins().contains("mona"));
    sim.accept_invitation("mona").unwrap();
    assert_eq!(api.get(mona).await.sr(), (200, "active", "admin"));
    let r = api.x(PUT, mona, json!({"role": "member"}), 200).await;
    assert_eq!(r.sr(), (200, "active", "member"));
    api.all_x(&[
        (GET, "/orgs/acme/members/mona", NONE, 204),
        (PUT, "/orgs/acme/memberships/nobody-here", json!({}), 404),
    ])
    .await;

    // Invitations: by e-mail and by id; duplicates and members are 422; unknown id 404.
    let invitations = "/orgs/acme/invitations";
    let by_email = json!({"email": "new.hire@example.com", "role": "direct_member"});
    let r = api.x(POST, invitations, by_email, 201).await;
    assert_eq!(
        (r.s("email"), &r.body["login"]),
        ("new.hire@example.com", &NONE)
    );
    let email_invite = r.id();
    let again = json!({"email": "NEW.hire@example.com"});
    let r = api.x(POST, invitations, again, 422).await;
    let e = &r.body["errors"][0];
    assert_eq!(
        (r.s("message"), &e["code"]),
        ("Validation Failed", &json!("already_exists"))
    );
    let octocat = json!({"invitee_id": 103});
    let r = api.x(POST, invitations, octocat, 422).await;
    let e = &r.body["errors"][0];
    assert_eq!(e["resource"], "OrganizationInvitation");
    assert_eq!(
        e["message"],
        "Invitee is already a part of this organization"
    );
    api.all_x(&[
        (POST, invitations, json!({"invitee_id": 999_999}), 404),
        (POST, invitations, json!({"role": "admin"}), 422),
    ])
    .await;

    // Teams, created through the API: the creator becomes a maintainer.
    let teams = "/orgs/acme/teams";
    let sre = json!({"name": "Platform SRE", "privacy": "closed"});
    let r = api.x(POST, teams, sre, 201).await;
    assert_eq!(
        (r.s("slug"), &r.body["members_count"]),
        ("platform-sre", &json!(1))
    );
    let sre = r.id();
    let taken = json!({"name": "platform sre"});
    let r = api.x(POST, teams, taken, 422).await;
    assert_eq!(r.body["errors"][0]["code"], "already_exists");
    let data = json!({"name": "Data", "description": "d"});
    api.x(POST, teams, data, 201).await;
    let (slugs, _, pages) = api.all("/orgs/acme/teams?per_page=1").await;
    assert_eq!((slugs, pages), (set(&["data", "platform-sre"]), 2));
    let r = api.x(GET, "/orgs/acme/teams/platform-sre", NONE, 200).await;
    assert_eq!(r.s("name"), "Platform SRE");
    api.x(GET, "/orgs/acme/teams/no-such-team", NONE, 404).await;

    let to_hubot = json!({"invitee_id": 102, "role": "direct_member", "team_ids": [sre]});
    let r = api.x(POST, invitations, to_hubot, 201).await;
    assert_eq!((r.s("login"), &r.body["team_count"]), ("hubot", &json!(1)));
    let hubot_invite = r.id();
    let (_, n, pages) = api.all("/orgs/acme/invitations?per_page=1").await;
    assert_eq!((n, pages), (2, 2));
    let cancel = &format!("{invitations}/{email_invite}");
    let once = [
        (DELETE, cancel.as_str(), NONE, 204),
        (DELETE, cancel, NONE, 404),
    ];
    api.all_x(&once).await;
    sim.expire_invitation(hubot_invite).unwrap();
    let failed = api.get("/orgs/acme/failed_invitations").await;
    let reason = &failed.body[0]["failed_reason"];
    assert_eq!(reason, "Invitation expired", "{}", failed.body);

    // Team memberships: members join at once; a non-member is invited (pending).
    let m = |who: &str| format!("/orgs/acme/teams/platform-sre/memberships/{who}");
    let maintainer = json!({"role": "maintainer"});
    let r = api.x(PUT, &m("octocat"), maintainer, 200).await;
    assert_eq!(r.sr(), (200, "active", "maintainer"));
    for who in ["dev01", "dev02", "dev03", "dev04", "dev01"] {
        api.x(PUT, &m(who), json!({"role": "member"}), 200).await;
    }
    assert_eq!(sim.team_membership_adds("platform-sre", "dev01"), 1);
    let r = api.x(PUT, &m("hubot"), json!({}), 200).await;
    assert_eq!(r.sr(), (200, "pending", "member"));
    assert_eq!(api.get(&m("hubot")).await.sr(), (200, "pending", "member"));
    let hubot = api.get("/orgs/acme/memberships/hubot").await;
    assert_eq!(hubot.sr(), (200, "pending", "member"));
    sim.accept_invitation("hubot").unwrap();
    assert_eq!(api.get(&m("hubot")).await.sr(), (200, "active", "member"));
    api.x(GET, "/orgs/acme/members/hubot", NONE, 204).await;
    let listing = "/orgs/acme/teams/platform-sre/members";
    let (_, n, pages) = api.all(&format!("{listing}?per_page=2")).await;
    // The creator, octocat, dev01-04, hubot.
    assert_eq!((n, pages), (7, 4));
    let maintainers = api.get(&format!("{listing}?role=maintainer")).await;
    assert_eq!(maintainers.logins(), set(&[ADMIN_LOGIN, "octocat"]));

    // Removal: a team membership, an org membership (and its teams), a member.
    api.all_x(&[
        (DELETE, &m("dev01"), NONE, 204),
        (GET, &m("dev01"), NONE, 404),
        (DELETE, mona, NONE, 204),
        (GET, mona, NONE, 404),
        (DELETE, mona, NONE, 404),
        (DELETE, "/orgs/acme/members/hubot", NONE, 204),
        (GET, &m("hubot"), NONE, 404),
    ])
    .await;

    app_and_token_refusals(api, sim).await;
    rate_limits(api, sim).await;
}

/// GitHub App auth, installation tokens, and the 401s and 403s the description declares.
async fn app_and_token_refusals(api: &Api, sim: &GitHubHandle) {
    let installation = sim.register_app(APP_ID, &fixture("test-rsa-public.pem"));
    let app = api.as_token(&app_jwt(-60, 540));
    assert_eq!(app.x(GET, "/app", NONE, 200).await.id(), APP_ID);
    let tokens = &format!("/app/installations/{installation}/access_tokens");
    let r = app.x(POST, tokens, json!({}), 201).await;
    let perms = json!({"members": "write", "organization_administration": "read"});
    assert_eq!(
        (&r.body["permissions"], r.s("repository_selection")),
        (&perms, "all")
    );
    let ghs = r.s("token").to_string();
    assert!(ghs.starts_with("ghs_"));
    let expires = chrono::DateTime::parse_from_rfc3339(r.s("expires_at")).unwrap();
    let ttl = expires.timestamp() - Utc::now().timestamp();
    assert!((3590..=3600).contains(&ttl), "{ttl}");
    let bot = api.as_token(&ghs);
    let r = bot.x(GET, "/orgs/acme/members", NONE, 200).await;
    let permissions = r.header("x-accepted-github-permissions");
    assert_eq!(
        (permissions, r.header("x-oauth-scopes")),
        (Some("members=read"), None)
    );
    let mona = "/orgs/acme/memberships/mona";
    let r = bot.x(PUT, mona, json!({}), 200).await;
    assert_eq!(r.sr(), (200, "pending", "member"));
    // Invitations sent by an app name the owner as their inviter here.
    assert_eq!(sim.invitations()[0].inviter, ADMIN_LOGIN);
    let read_only = json!({"permissions": {"members": "read"}});
    let narrowed = app.x(POST, tokens, read_only, 201).await;
    let reader_bot = api.as_token(narrowed.s("token"));
    let dev02 = "/orgs/acme/members/dev02";
    let r = reader_bot.x(DELETE, dev02, NONE, 403).await;
    assert_eq!(r.s("message"), "Resource not accessible by integration");
    let more = json!({"permissions": {"administration": "write"}});
    let unknown = "/app/installations/9/access_tokens";
    let calls = [
        (POST, tokens.as_str(), more, 422),
        (POST, unknown, json!({}), 404),
    ];
    app.all_x(&calls).await;
    assert_eq!(sim.token_requests(), 4);
    // A token where a JWT belongs, and JWTs GitHub refuses: 401.
    let r = api.x(POST, tokens, json!({}), 401).await;
    assert_eq!(r.s("message"), "A JSON web token could not be decoded");
    let far = api.as_token(&app_jwt(0, 900));
    let r = far.x(POST, tokens, json!({}), 401).await;
    let too_far = "'Expiration time' claim ('exp') is too far in the future";
    assert_eq!(r.s("message"), too_far);
    let old = api.as_token(&app_jwt(-700, -60));
    old.x(POST, tokens, json!({}), 401).await;
    app.x(GET, "/user", NONE, 403).await;

    // Personal tokens: fine-grained read-only (its expiry on every answer), a plain member.
    let reader = api.as_token(READER_TOKEN);
    let dev02 = "/orgs/acme/memberships/dev02";
    let r = reader.x(GET, dev02, NONE, 200).await;
    let expiry = r.header("github-authentication-token-expiration");
    assert_eq!(expiry, Some("2099-01-31 12:00:00 UTC"));
    let promote = json!({"role": "admin"});
    let r = reader.x(PUT, dev02, promote.clone(), 403).await;
    let not_pat = "Resource not accessible by personal access token";
    assert_eq!(r.s("message"), not_pat);
    let r = api.as_token(MEMBER_TOKEN).x(PUT, dev02, promote, 403).await;
    assert_eq!(r.s("message"), "Must have admin rights to Organization.");
    let docs = "https://docs.github.com/rest";
    assert_eq!((r.s("documentation_url"), r.s("status")), (docs, "403"));

    // Bad, expired and revoked tokens: 401 Bad credentials.
    let stranger = api.as_token("ghp_notATokenTheSimulatorKnows0000000000");
    let r = stranger.x(GET, "/user", NONE, 401).await;
    let bad = json!({"message": "Bad credentials", "documentation_url": docs, "status": "401"});
    assert_eq!(r.body, bad);
    let short = "ghp_shortLivedTokenForTheTests0000000000";
    let soon = Utc::now() + chrono::Duration::milliseconds(300);
    sim.add_token(short, token("octocat", &[], Some(soon)));
    api.as_token(short).x(GET, "/user", NONE, 200).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    api.as_token(short).x(GET, "/user", NONE, 401).await;
    sim.revoke_token(&ghs);
    bot.x(GET, "/user", NONE, 401).await;
    // An installation token past its TTL.
    sim.set_installation_token_ttl(Duration::from_millis(300));
    let brief = app.x(POST, tokens, json!({}), 201).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let expired = api.as_token(brief.s("token"));
    let r = expired.x(GET, "/user", NONE, 401).await;
    assert_eq!(r.s("message"), "Bad credentials");
}

/// Primary and secondary limits and the concurrency cap, on an operation whose 403 the
/// description declares (get-membership-for-user).
async fn rate_limits(api: &Api, sim: &GitHubHandle) {
    let probe = "/orgs/acme/memberships/dev03";
    let limited = api.as_token(&owner_token(sim, "limited", 900));
    for _ in 0..2 {
        // GET /rate_limit counts nothing.
        let r = limited.get("/rate_limit").await;
        let (core, rate) = (&r.body["resources"]["core"], &r.body["rate"]);
        assert_eq!(
            (&core["used"], &rate["remaining"]),
            (&json!(0), &json!(5000))
        );
    }
    sim.set_primary_limit(2);
    limited.x(GET, probe, NONE, 200).await;
    let last = limited.x(GET, probe, NONE, 200).await;
    let spent = limited.get(probe).await;
    sim.set_primary_limit(5000);
    let remaining = |r: &Resp| r.header("x-ratelimit-remaining").map(String::from);
    let used = last.header("x-ratelimit-used");
    assert_eq!((remaining(&last), used), (Some("0".into()), Some("2")));
    assert_eq!((spent.status, remaining(&spent)), (403, Some("0".into())));
    let exceeded = "API rate limit exceeded for user ID 900.";
    assert!(
        spent.s("message").starts_with(exceeded),
        "{}",
        spent.s("message")
    );
    let reset = spent.header("x-ratelimit-reset").unwrap_or("0");
    assert!(reset.parse::<i64>().unwrap() > Utc::now().timestamp());

    // Secondary: points per minute (GET 1); every other refusal without retry-after and
    // without x-ratelimit-reset.
    let burst = api.as_token(&owner_token(sim, "burst", 901));
    sim.set_secondary_limits(2, 80);
    let (a, b) = (burst.get(probe).await, burst.get(probe).await);
    let (with, without) = (burst.get(probe).await, burst.get(probe).await);
    sim.set_secondary_limits(900, 80);
    let statuses = [a.status, b.status, with.status, without.status];
    assert_eq!(statuses, [200, 200, 403, 403]);
    let secondary = "You have exceeded a secondary rate limit.";
    for r in [&with, &without] {
        assert!(r.s("message").starts_with(secondary), "{}", r.s("message"));
        // Not the primary limit.
        assert_ne!(remaining(r), Some("0".into()));
    }
    let retry = with.header("retry-after").unwrap_or("");
    assert!(retry.parse::<u64>().is_ok() && with.header("x-ratelimit-reset").is_some());
    let told = (
        without.header("retry-after"),
        without.header("x-ratelimit-reset"),
    );
    assert_eq!(told, (None, None));
    // Content-creating requests per minute (PUT counts).
    let writer = api.as_token(&owner_token(sim, "writer", 902));
    sim.set_secondary_limits(900, 1);
    writer.x(PUT, probe, json!({"role": "member"}), 200).await;
    let r = writer.x(PUT, probe, json!({"role": "member"}), 403).await;
    sim.set_secondary_limits(900, 80);
    assert!(r.s("message").contains("secondary rate limit"));

    // Requests in flight: one at a time, the second refused without retry-after.
    sim.concurrency().set_limit(1);
    let mut slow = FaultProfile::none();
    slow.latency = Some((Duration::from_millis(300), Duration::from_millis(300)));
    sim.faults().set_profile(slow);
    let (a, b) = tokio::join!(api.get(probe), api.get(probe));
    sim.concurrency().set_limit(100);
    sim.faults().set_profile(FaultProfile::none());
    let refused = if a.status == 403 { &a } else { &b };
    let statuses = a.status + b.status;
    assert_eq!((statuses, refused.header("retry-after")), (603, None));
    // An injected burst in GitHub's shape (ThrottleStyle::GitHub).
    sim.faults().throttle_next(1);
    let r = api.x(GET, probe, NONE, 403).await;
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.s("message").contains("secondary rate limit"));
    assert!(r.header("x-ratelimit-limit").is_some());
    assert_eq!(sim.refused(), (1, 4));
}

/// What the description does not declare, straight at the simulator.
async fn raw_only(api: &Api, sim: &GitHubHandle) {
    // No credentials, on an operation that declares no 401: the address's own limit.
    let mut anonymous = api.clone();
    anonymous.token = None;
    let r = anonymous.x(GET, "/orgs/acme/members", NONE, 401).await;
    assert_eq!(r.s("message"), "Requires authentication");
    assert_eq!(r.header("x-ratelimit-limit"), Some("60"));
    // Versions: unsupported 400, retired 410, deprecated with Deprecation and Sunset.
    let r = api.version(Some("v3")).x(GET, "/user", NONE, 400).await;
    let unsupported = "\"v3\", is not a supported version";
    assert!(r.s("message").contains(unsupported), "{}", r.s("message"));
    let r = api.version(None).get("/user").await;
    let selected = r.header("x-github-api-version-selected");
    assert_eq!(selected, Some("2022-11-28"), "the default");
    let newer = api.version(Some("2026-03-10"));
    let r = newer.get("/user").await;
    let selected = r.header("x-github-api-version-selected");
    assert_eq!(selected, Some("2026-03-10"));
    let closing = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let sunset = closing + Duration::from_secs(86_400 * 365);
    sim.deprecate_version("2022-11-28", closing, sunset);
    let r = api.get("/user").await;
    let deprecation = r.header("deprecation");
    assert_eq!(deprecation, Some("Sun, 17 Mar 2030 17:46:40 GMT"));
    assert_eq!(r.header("sunset"), Some("Mon, 17 Mar 2031 17:46:40 GMT"));
    // That version only.
    assert!(newer.get("/user").await.header("deprecation").is_none());
    sim.retire_version("2026-03-10");
    newer.x(GET, "/user", NONE, 410).await;
    // Bodies GitHub cannot parse; values it refuses; routes and methods it does not have.
    let url = format!("{}/orgs/acme/memberships/dev04", api.base);
    let rb = api.http.put(url).bearer_auth(ADMIN_TOKEN);
    let rb = rb.header("content-type", "application/json");
    let r = rb.body("{\"role\": ").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Problems parsing JSON");
    let owner = json!({"role": "owner"});
    let r = api.x(PUT, "/orgs/acme/memberships/dev04", owner, 422).await;
    assert!(r.s("message").starts_with("Invalid request."), "{}", r.body);
    api.all_x(&[
        (GET, "/orgs/acme/nothing-here", NONE, 404),
        (Method::PATCH, "/orgs/acme/members", NONE, 404),
    ])
    .await;
    // 429 instead of 403 when so configured (injected bursts stay 403).
    sim.set_rate_limit_status(429);
    sim.faults().throttle_next(1);
    api.x(GET, "/orgs/acme/members", NONE, 403).await;
    let spent = api.as_token(&owner_token(sim, "spent", 903));
    sim.set_primary_limit(0);
    let r = spent.x(GET, "/orgs/acme/members", NONE, 429).await;
    sim.set_primary_limit(5000);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    // Injected outages in GitHub's shape.
    sim.faults().set_down(true);
    let r = api.get("/user").await;
    sim.faults().set_down(false);
    assert_eq!((r.status, r.s("message")), (503, "Service Unavailable"));
    // Changes behind the adapter's back (drift) show in the next read.
    let maintainer = TeamRole::Maintainer;
    sim.add_team_member("data", "dev05", maintainer).unwrap();
    assert!(sim.remove_member("dev06"));
    let data = "/orgs/acme/teams/data/members?role=maintainer";
    let data = api.get(data).await;
    assert!(data.logins().contains("dev05"));
    api.x(GET, "/orgs/acme/members/dev06", NONE, 404).await;
}

/// A new membership is listed only after the visibility delay; single reads see it at once.
async fn eventual_consistency() {
    let delay = Duration::from_millis(400);
    let mut opts = GitHubSimOptions::default();
    opts.faults.visibility_delay = delay;
    let (server, sim) = start(opts).await;
    let api = Api::new(&server.base_url());
    let mona = "/orgs/acme/memberships/mona";
    api.x(PUT, mona, json!({}), 200).await;
    sim.accept_invitation("mona").unwrap();
    let late = json!({"name": "Late"});
    api.x(POST, "/orgs/acme/teams", late, 201).await;
    let octocat = "/orgs/acme/teams/late/memberships/octocat";
    api.x(PUT, octocat, json!({}), 200).await;
    let r = api.get(mona).await;
    assert_eq!(r.sr(), (200, "active", "member"));
    api.x(GET, "/orgs/acme/members/mona", NONE, 204).await;
    let members = "/orgs/acme/members?per_page=100";
    let late = "/orgs/acme/teams/late/members";
    let listed = async |path: &str, who: &str| api.get(path).await.logins().contains(who);
    assert!(!listed(members, "mona").await && !listed(late, "octocat").await);
    tokio::time::sleep(delay + Duration::from_millis(50)).await;
    assert!(listed(members, "mona").await && listed(late, "octocat").await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_walk_over_every_route() {
    let (server, sim) = start(GitHubSimOptions::default()).await;
    let api = Api::new(&server.base_url());
    walk(&api, &sim).await;
    raw_only(&api, &sim).await;
    assert_eq!(sim.invitations_for("new.hire@example.com"), 1);
    // Invited, removed, invited again by the app.
    assert_eq!(sim.invitations_for("mona"), 2);
    assert_eq!(sim.max_invitations(), 2);
    assert!(sim.count(|r| r.status == 401) >= 6);
    eventual_consistency().await;
    server.stop().await;
}

/// Two narrow allowances, nothing else:
///
/// - The shared recorder (`tests/common/prism.rs`) takes every 422 for Prism's own refusal
///   of a request. A 422 whose recorded text is exactly a GitHub `validation-error` body
///   (no `sl-violations` header in front, no `application/problem+json` fields) is the
///   simulator's answer, validated by Prism and passed through; `--errors` would have made
///   it a 500 had it broken the description.
/// - GitHub answers `PUT /orgs/{org}/memberships/{username}` for a user who does not exist
///   with 404, which the description does not declare (200, 403, 422): Prism's only
///   complaint is then the undeclared status, as a warning.
fn allowed(x: &prism::Exchange) -> bool {
    let Some(v) = &x.violation else { return false };
    let body: Value = serde_json::from_str(v).unwrap_or_default();
    let docs = body["documentation_url"].as_str().unwrap_or("");
    let passed_through_422 = x.status == 422
        && docs.starts_with("https://docs.github.com/")
        && body.get("validation").is_none()
        && body.get("title").is_none();
    let undeclared_status = |i: &Value| {
        i["severity"] == "Warning"
            && i["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Unable to match the returned status code"))
    };
    let unknown_user_404 = x.method == "PUT"
        && x.status == 404
        && x.path.starts_with("/orgs/acme/memberships/")
        && body
            .as_array()
            .is_some_and(|items| items.len() == 1 && undeclared_status(&items[0]));
    passed_through_422 || unknown_user_404
}

/// The operations the walk must take through Prism.
const OPERATIONS: &str = "GET /users/{username}, GET /user, GET /rate_limit, GET /app, \
    POST /app/installations/{installation_id}/access_tokens, GET /orgs/{org}/members, \
    GET /orgs/{org}/members/{username}, DELETE /orgs/{org}/members/{username}, \
    GET /orgs/{org}/memberships/{username}, PUT /orgs/{org}/memberships/{username}, \
    DELETE /orgs/{org}/memberships/{username}, GET /orgs/{org}/invitations, \
    POST /orgs/{org}/invitations, DELETE /orgs/{org}/invitations/{invitation_id}, \
    GET /orgs/{org}/failed_invitations, GET /orgs/{org}/teams, POST /orgs/{org}/teams, \
    GET /orgs/{org}/teams/{team_slug}, GET /orgs/{org}/teams/{team_slug}/members, \
    GET /orgs/{org}/teams/{team_slug}/memberships/{username}, \
    PUT /orgs/{org}/teams/{team_slug}/memberships/{username}, \
    DELETE /orgs/{org}/teams/{team_slug}/memberships/{username}";

/// Whether a recorded request is an instance of `op` (`GET /orgs/{org}/members`).
fn is_op(x: &prism::Exchange, op: &str) -> bool {
    let (method, template) = op.split_once(' ').unwrap_or_default();
    let path = x.path.split('?').next().unwrap_or("");
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    let same = |(t, p): (&&str, &&str)| t.starts_with('{') || t == p;
    x.method == method && t.len() == p.len() && t.iter().zip(&p).all(same)
}

/// The simulator, seeded, and a client for it (or for what is in front of it).
async fn start(opts: GitHubSimOptions) -> (SimServer, GitHubHandle) {
    accessdesk::adapters::http::install_crypto_provider();
    let (server, sim) = github::spawn(opts).await.expect("sim");
    seed(&sim);
    (server, sim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_through_prism() {
    let (server, sim) = start(GitHubSimOptions::default()).await;
    let started = std::time::Instant::now();
    let spec = "github/api.github.com.json";
    let rig = prism::PrismRig::start(spec, &server.base_url(), "/orgs/acme/members").await;
    let ready = started.elapsed().as_secs_f64();
    let api = Api::new(&rig.base());
    walk(&api, &sim).await;
    let contract = rig.exchanges().len();

    // Self-check: responses that break org-membership, the users' oneOf and a listing's
    // array, and a request body that breaks set-membership's schema, must all be reported.
    let shape = BodyFault::UnexpectedShape;
    for path in [
        "/orgs/acme/memberships/dev05",
        "/users/mona",
        "/orgs/acme/members",
    ] {
        sim.fail(FailRule::new(Some(GET), path, shape.clone(), 1));
        api.x(GET, path, NONE, 500).await;
    }
    let bad = json!({"role": "owner"});
    api.x(PUT, "/orgs/acme/memberships/dev05", bad, 422).await;
    let probes = rig.exchanges().split_off(contract);
    assert_eq!(probes.len(), 4);
    let missed: Vec<_> = probes
        .iter()
        .filter(|p| p.violation.is_none() || allowed(p))
        .collect();
    assert!(
        missed.is_empty(),
        "the recorder missed a violation: {missed:?}"
    );

    let exchanges = rig.exchanges()[..contract].to_vec();
    let violations = prism::violations(&exchanges, allowed);
    assert!(
        violations.is_empty(),
        "Prism reported {} violation(s):\n{}\n\nPrism log:\n{}",
        violations.len(),
        violations.join("\n"),
        rig.prism.log_tail()
    );
    let operations: Vec<&str> = OPERATIONS.split(", ").map(str::trim).collect();
    for op in &operations {
        let covered = exchanges.iter().any(|x| is_op(x, op));
        assert!(covered, "{op} never went through Prism");
    }
    let statuses: BTreeSet<u16> = exchanges.iter().map(|x| x.status).collect();
    for s in [200, 201, 204, 401, 403, 404, 422] {
        assert!(statuses.contains(&s), "no {s} was validated: {statuses:?}");
    }
    let allowed_with = |s: u16| {
        exchanges
            .iter()
            .filter(move |x| x.status == s && allowed(x))
    };
    let (gaps, passed_422) = (allowed_with(404).count(), allowed_with(422).count());
    assert_eq!(gaps, 1, "the one unknown-user PUT");
    eprintln!(
        "github conformance: Prism ready after {ready:.1} s; {} exchanges, {} operations, \
         statuses {statuses:?}; no violations besides the undeclared 404 ({gaps}); \
         {passed_422} validated 422s passed through",
        exchanges.len(),
        operations.len()
    );
    rig.stop().await;
    server.stop().await;
}
