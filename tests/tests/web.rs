//! The web page's shell side against the built binary: `linekeeper passwd` while the daemon runs (through its
//! control socket) replaces the first-start password and signs the user in only with the new one, which must be
//! changed first; the diagnostics page then shows the simulated modem's answer to `ATI` and the raw lines it sent
//! over the pty.

use linekeeper_e2e::*;

struct Browser {
    agent: ureq::Agent,
    base: String,
    origin: String,
    cookie: String,
}

impl Browser {
    fn new(port: u16) -> Browser {
        Browser {
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            base: format!("http://127.0.0.1:{port}"),
            origin: format!("http://127.0.0.1:{port}"),
            cookie: String::new(),
        }
    }

    /// (status, Location, Set-Cookie, body)
    fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, String, String, String) {
        let r = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("HTTP: {e}"),
        };
        let location = r.header("location").unwrap_or_default().to_string();
        let cookie = r.header("set-cookie").unwrap_or_default().to_string();
        (
            r.status(),
            location,
            cookie,
            r.into_string().unwrap_or_default(),
        )
    }

    fn get(&self, path: &str) -> (u16, String, String) {
        let (status, location, _, body) = Self::answer(
            self.agent
                .get(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie)
                .call(),
        );
        (status, location, body)
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
        let (status, location, cookie, body) = Self::answer(
            self.agent
                .post(&format!("{}{path}", self.base))
                .set("Origin", &self.origin)
                .set("Cookie", &self.cookie)
                .send_form(form),
        );
        if let Some(c) = cookie.split(';').next().filter(|c| !c.is_empty()) {
            self.cookie = c.to_string();
        }
        (status, location, body)
    }

    fn csrf(&self, path: &str) -> String {
        let (_, _, body) = self.get(path);
        let i = body.find("data-csrf=\"").expect("a signed-in page") + 11;
        body[i..i + 32].to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwd_from_the_shell_and_the_diagnostics_page() {
    let mut env = Env::start(DaemonOptions::default()).await;
    let first = env.daemon.wait_logged_password();

    // The daemon holds the store: `passwd` goes through its control socket.
    let out = env.daemon.cli(&["passwd", "admin"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let new = out.stdout.trim().to_string();
    assert!(
        new.len() == 16 && new.chars().all(|c| c.is_ascii_alphanumeric()),
        "{}",
        out.all()
    );
    let unknown = env.daemon.cli(&["passwd", "nobody"]);
    assert_ne!(unknown.code, Some(0));
    assert!(
        unknown.all().contains("no web user `nobody`"),
        "{}",
        unknown.all()
    );

    let mut b = Browser::new(env.daemon.web_port());
    let (status, _, body) = b.post("/login", &[("user", "admin"), ("password", &first)]);
    assert_eq!(status, 401, "the first-start password was replaced: {body}");
    let (status, location, _) = b.post("/login", &[("user", "admin"), ("password", &new)]);
    assert_eq!((status, location.as_str()), (303, "/password"));
    assert_eq!(b.get("/diagnostics").1, "/password", "changed first");
    let csrf = b.csrf("/password");
    let chosen = "a password of my own";
    let (status, location, body) = b.post(
        "/password",
        &[
            ("csrf", &csrf),
            ("current", &new),
            ("new", chosen),
            ("confirm", chosen),
        ],
    );
    assert_eq!((status, location.as_str()), (303, "/"), "{body}");

    // The modem's identification and its raw lines, as the simulated modem sent them over the pty.
    env.ring_with_caller_id("13700002222", "DIAG").await;
    env.watch
        .wait_event(TOPIC_CALL, "call.ringing", STEP, |e| {
            e["type"] == "call.ringing"
        })
        .await;
    let (status, _, page) = b.get("/diagnostics");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("LINEKEEPER SIMULATED MODEM"),
        "the ATI answer: {page}"
    );
    for raw in ["AT+VCID=1", "RING", "NMBR = 13700002222"] {
        assert!(page.contains(raw), "raw line `{raw}` missing: {page}");
    }
    // The audit log names the shell's reset.
    let (_, _, audit) = b.get("/audit");
    assert!(audit.contains("passwd admin"), "{audit}");
}
