//! A throwaway MIT Kerberos realm on loopback for tests: `LAB.TEST` in a temporary
//! directory, its own `krb5.conf` and `kdc.conf` (through `KRB5_CONFIG` and
//! `KRB5_KDC_PROFILE`, never the system's), a KDC (`krb5kdc -n`) on a free port, the
//! principals `ops@LAB.TEST` (password-protected, pre-authentication required),
//! `HTTP/localhost@LAB.TEST` and `HTTP/ex01.lab.test@LAB.TEST` with their keys in a
//! keytab. Dropping the realm stops the KDC and removes the directory.
//!
//! The tools come from MIT krb5 (`krb5-kdc`, `krb5-admin-server`, `krb5-user`), which
//! `scripts/test` installs. A test that needs the realm FAILS when they are missing.

#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REALM: &str = "LAB.TEST";
pub const USER: &str = "ops@LAB.TEST";

pub struct Kdc {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    /// The password of `ops@LAB.TEST`.
    pub password: String,
}

/// Finds an MIT Kerberos tool on PATH or in the sbin directories Debian puts them in.
pub fn tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "tool '{name}' not found: run scripts/test, which installs MIT Kerberos and libfaketime (apt-get install krb5-kdc krb5-admin-server krb5-user faketime)"
            )
        })
}

fn free_port() -> u16 {
    // The port is free when asked; the KDC binds it right after (TCP and UDP).
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn random_password() -> String {
    let bytes: Vec<u8> = (0..12).map(|_| rand_byte()).collect();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("Krb-{hex}")
}

fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded randomly per process and per instance: enough for a throwaway
    // realm's passwords, without a dependency.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish() as u8
}

impl Kdc {
    /// Creates the realm and starts its KDC.
    pub fn start() -> Kdc {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let d = dir.path().display().to_string();
        let password = random_password();
        std::fs::write(
            dir.path().join("krb5.conf"),
            format!(
                "[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n dns_canonicalize_hostname = false\n rdns = false\n udp_preference_limit = 1\n[realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n[domain_realm]\n localhost = {REALM}\n .lab.test = {REALM}\n lab.test = {REALM}\n"
            ),
        )
        .expect("krb5.conf");
        std::fs::write(
            dir.path().join("kdc.conf"),
            format!(
                "[kdcdefaults]\n kdc_ports = {port}\n kdc_tcp_ports = {port}\n[realms]\n {REALM} = {{\n  database_name = {d}/principal\n  key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n  kdc_ports = {port}\n  kdc_tcp_ports = {port}\n }}\n[logging]\n kdc = FILE:{d}/kdc.log\n admin_server = FILE:{d}/kadmin.log\n default = FILE:{d}/krb5.log\n"
            ),
        )
        .expect("kdc.conf");
        std::fs::write(dir.path().join("kadm5.acl"), "").expect("kadm5.acl");
        let mut kdc = Kdc {
            dir,
            child: None,
            port,
            password,
        };
        let master = random_password();
        kdc.run(Command::new(tool("kdb5_util")).args(["create", "-s", "-r", REALM, "-P", &master]));
        let pw = kdc.password.clone();
        kdc.kadmin(&format!("addprinc -pw {pw} +requires_preauth {USER}"));
        for spn in ["HTTP/localhost", "HTTP/ex01.lab.test"] {
            kdc.kadmin(&format!("addprinc -randkey {spn}@{REALM}"));
            kdc.kadmin(&format!(
                "ktadd -k {} {spn}@{REALM}",
                kdc.keytab().display()
            ));
        }
        kdc.start_kdc();
        kdc
    }

    fn start_kdc(&mut self) {
        let child = Command::new(tool("krb5kdc"))
            .args(["-n", "-r", REALM])
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("krb5kdc starts");
        self.child = Some(child);
        // Ready when it accepts TCP connections.
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the KDC did not listen on port {} (see {})",
                self.port,
                self.path("kdc.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the KDC (the realm's files stay): for "KDC unreachable".
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The keytab with the keys of `HTTP/localhost` and `HTTP/ex01.lab.test`.
    pub fn keytab(&self) -> PathBuf {
        self.path("http.keytab")
    }

    /// The variables that point MIT krb5 at this realm.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "KRB5_CONFIG".into(),
                self.path("krb5.conf").display().to_string(),
            ),
            (
                "KRB5_KDC_PROFILE".into(),
                self.path("kdc.conf").display().to_string(),
            ),
            // No trace output, and no operator's own cache or keytab.
            (
                "KRB5CCNAME".into(),
                format!("FILE:{}", self.path("no-such-cache").display()),
            ),
            (
                "KRB5_CLIENT_KTNAME".into(),
                format!("FILE:{}", self.path("no-client-keytab").display()),
            ),
        ]
    }

    fn run(&self, cmd: &mut Command) {
        let out = cmd
            .envs(self.env())
            .stdin(Stdio::null())
            .output()
            .expect("a Kerberos tool runs");
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn kadmin(&self, query: &str) {
        self.run(Command::new(tool("kadmin.local")).args(["-r", REALM, "-q", query]));
    }

    /// `kinit ops@LAB.TEST` with the password on stdin, into the cache `cache` (a path).
    /// `lifetime` as kinit's `-l` (e.g. "10h").
    pub fn kinit(&self, cache: &Path, lifetime: &str) {
        self.kinit_as(USER, &self.password, cache, lifetime);
    }

    /// `kinit` of another principal (made with [`Kdc::kadmin`]).
    pub fn kinit_as(&self, principal: &str, password: &str, cache: &Path, lifetime: &str) {
        let mut child = Command::new(tool("kinit"))
            .args(["-l", lifetime, principal])
            .envs(self.env())
            .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kinit runs");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = writeln!(stdin, "{password}");
        }
        let out = child.wait_with_output().expect("kinit finishes");
        assert!(
            out.status.success(),
            "kinit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        self.stop();
    }
}
