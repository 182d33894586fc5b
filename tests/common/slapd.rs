//! OpenLDAP slapd for one test: its own config (mdb, the memberOf and refint overlays), on
//! a free loopback port, stopped by its PID when dropped.
//! The suffix is `dc=example,dc=com` with `ou=people` and `ou=groups`; the root DN
//! `cn=admin,dc=example,dc=com` binds with [`ROOT_PASSWORD`].
//!
//! slapd comes from Debian (`apt-get install slapd ldap-utils`, done by .ci/test-all). A
//! missing slapd fails the test with that command; it is never skipped.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=example,dc=com";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
pub const ROOT_PASSWORD: &str = "slapd-test-root-secret";
const INSTALL: &str = "apt-get install -y slapd ldap-utils (bash .ci/test-all does it)";

pub struct Slapd {
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}\nslapd and ldap-utils are needed: {INSTALL}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn config(dir: &Path, hash: &str) -> String {
    let d = dir.display();
    format!(
        "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
database mdb
maxsize 104857600
suffix \"{SUFFIX}\"
rootdn \"{ROOT_DN}\"
rootpw {hash}
directory {d}/data
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
index objectClass eq
index uid,cn,member,employeeNumber eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
overlay refint
refint_attributes member
"
    )
}

impl Slapd {
    /// Start slapd and wait until the root DSE answers; then add the suffix and the two
    /// organisational units.
    pub fn start() -> Slapd {
        for bin in [
            "/usr/sbin/slapd",
            "/usr/sbin/slappasswd",
            "/usr/bin/ldapadd",
        ] {
            assert!(
                Path::new(bin).exists(),
                "{bin} not found; the LDAP peer tests need OpenLDAP: {INSTALL}"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir for slapd");
        std::fs::create_dir(dir.path().join("data")).expect("slapd data dir");
        std::fs::write(dir.path().join("root.pw"), ROOT_PASSWORD).expect("password file");
        let hash = run(
            Command::new("/usr/sbin/slappasswd")
                .arg("-T")
                .arg(dir.path().join("root.pw")),
            "slappasswd",
        );
        let conf = dir.path().join("slapd.conf");
        std::fs::write(&conf, config(dir.path(), &hash)).expect("slapd.conf");
        run(
            Command::new("/usr/sbin/slaptest")
                .arg("-f")
                .arg(&conf)
                .arg("-u"),
            "slaptest",
        );
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let child = Command::new("/usr/sbin/slapd")
            .arg("-f")
            .arg(&conf)
            .args(["-h", &format!("{url}/"), "-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting slapd: {e}"));
        let s = Slapd { url, child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = Command::new("ldapsearch")
                .args(["-x", "-H", &s.url, "-b", "", "-s", "base", "namingContexts"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|st| st.success());
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not answer within 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s.ldif(&format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: ou=disabled,{SUFFIX}\nobjectClass: organizationalUnit\nou: disabled\n"
        ));
        s
    }

    /// Add entries from LDIF as the root DN (`ldapadd`).
    pub fn ldif(&self, ldif: &str) {
        let path = self.dir.path().join("add.ldif");
        std::fs::write(&path, ldif).expect("ldif");
        run(
            Command::new("ldapadd")
                .args([
                    "-x",
                    "-H",
                    &self.url,
                    "-D",
                    ROOT_DN,
                    "-w",
                    ROOT_PASSWORD,
                    "-f",
                ])
                .arg(&path),
            "ldapadd",
        );
    }

    /// Change entries from LDIF as the root DN (`ldapmodify`): drift behind our back.
    pub fn modify(&self, ldif: &str) {
        let path = self.dir.path().join("modify.ldif");
        std::fs::write(&path, ldif).expect("ldif");
        run(
            Command::new("ldapmodify")
                .args([
                    "-x",
                    "-H",
                    &self.url,
                    "-D",
                    ROOT_DN,
                    "-w",
                    ROOT_PASSWORD,
                    "-f",
                ])
                .arg(&path),
            "ldapmodify",
        );
    }

    /// `ldapsearch` as the root DN: the attribute values of `attr` over the matched entries.
    pub fn values(&self, base: &str, filter: &str, attr: &str) -> Vec<String> {
        let out = run(
            Command::new("ldapsearch").args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                &self.url,
                "-D",
                ROOT_DN,
                "-y",
                &self.password_file().to_string_lossy(),
                "-b",
                base,
                filter,
                attr,
            ]),
            "ldapsearch",
        );
        let prefix = format!("{attr}: ");
        out.lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    /// The root password in a file (`-y`), so that it never reaches a command line.
    fn password_file(&self) -> std::path::PathBuf {
        let p = self.dir.path().join("root.pw");
        if !p.exists() {
            std::fs::write(&p, ROOT_PASSWORD).expect("password file");
        }
        p
    }

    /// A groupOfNames holding only the placeholder member (a groupOfNames needs one).
    pub fn group(&self, cn: &str) {
        self.ldif(&format!(
            "dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\nmember: cn=placeholder,{SUFFIX}\n"
        ));
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
