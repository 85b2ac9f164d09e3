//! MQTT with password authentication and the documented ACL (config/mosquitto-acl.example) on a real mosquitto:
//! the box publishes and takes commands as its user; a dashboard user reads and commands but cannot write the box's
//! topics; a wrong password is an error the box reports and survives.

use std::time::Duration;

use linekeeper_e2e::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use tokio::sync::mpsc;

fn passwd_file() -> String {
    let dir = test_dir("lk-passwd-");
    let path = dir.path().join("passwd");
    for (i, (user, pass)) in [("linekeeper", "box-secret"), ("dashboard", "dash-secret")]
        .iter()
        .enumerate()
    {
        let mut cmd = std::process::Command::new("mosquitto_passwd");
        cmd.arg("-b");
        if i == 0 {
            cmd.arg("-c");
        }
        let ok = cmd
            .arg(&path)
            .arg(user)
            .arg(pass)
            .status()
            .expect("run mosquitto_passwd");
        assert!(ok.success(), "mosquitto_passwd failed");
    }
    std::fs::read_to_string(&path).unwrap()
}

/// A client as `user`, subscribed to `filter`, handing every message to the returned channel.
async fn client(
    port: u16,
    user: &str,
    pass: &str,
    filter: &str,
) -> (AsyncClient, mpsc::UnboundedReceiver<(String, String)>) {
    // Unique client ids: two clients with one id would keep kicking each other off the broker.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut o = MqttOptions::new(
        format!("e2e-{user}-{}-{n}", std::process::id()),
        "127.0.0.1",
        port,
    );
    o.set_keep_alive(Duration::from_secs(30));
    o.set_credentials(user, pass);
    let (c, mut el) = AsyncClient::new(o, 16);
    let (tx, rx) = mpsc::unbounded_channel();
    let (c2, filter) = (c.clone(), filter.to_string());
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = c2.try_subscribe(filter.as_str(), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send((
                        p.topic.clone(),
                        String::from_utf8_lossy(&p.payload).into_owned(),
                    ));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    (c, rx)
}

async fn next_on(rx: &mut mpsc::UnboundedReceiver<(String, String)>, topic: &str) -> String {
    next_matching(rx, topic, |_| true).await
}

async fn next_matching(
    rx: &mut mpsc::UnboundedReceiver<(String, String)>,
    topic: &str,
    want: impl Fn(&str) -> bool,
) -> String {
    tokio::time::timeout(STEP, async {
        loop {
            let (t, p) = rx.recv().await.expect("the client runs");
            if t == topic && want(&p) {
                return p;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("nothing wanted on {topic} within {STEP:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_auth_and_the_documented_acl() {
    let acl =
        std::fs::read_to_string(workspace_root().join("config/mosquitto-acl.example")).unwrap();
    let passwd = passwd_file();
    let broker = Mosquitto::launch_custom(
        "allow_anonymous false\npassword_file {dir}/passwd\nacl_file {dir}/acl",
        &[("passwd", &passwd), ("acl", &acl)],
    );
    let pty = PtyPair::new();
    let modem = open_modem(&pty).await;
    let mut daemon = Daemon::new(&DaemonOptions::default(), pty.daemon_side(), broker.port());
    let pw = daemon.dir().join("mqtt-password");
    std::fs::write(&pw, "box-secret\n").unwrap();
    let text = std::fs::read_to_string(daemon.config_path())
        .unwrap()
        .replace(
            "[mqtt]\n",
            &format!(
                "[mqtt]\nusername = \"linekeeper\"\npassword_file = \"{}\"\n",
                pw.display()
            ),
        );
    std::fs::write(daemon.config_path(), text).unwrap();
    let (dash, mut seen) = client(broker.port(), "dashboard", "dash-secret", "linekeeper/#").await;
    daemon.start();
    wait_modem_initialized(&modem).await;
    daemon.wait_link("up");
    daemon.authorize();

    // The box's retained status reaches the dashboard, so the box authenticated and may write its topics.
    next_matching(&mut seen, TOPIC_STATUS, |p| p == "online").await;
    // The dashboard may command.
    dash.publish(
        "linekeeper/hq/cmd/complaint",
        QoS::AtLeastOnce,
        false,
        json!({"request_id":"acl-1","number":"13800138000","note":"via the dashboard"}).to_string(),
    )
    .await
    .unwrap();
    let answer = next_on(&mut seen, "linekeeper/hq/cmd/result").await;
    assert!(answer.contains("\"ok\":true"), "{answer}");
    // The dashboard may not write the box's state: the broker drops it, the box's status stays.
    dash.publish(TOPIC_STATUS, QoS::AtLeastOnce, true, "offline")
        .await
        .unwrap();
    let (_, mut late) = client(broker.port(), "dashboard", "dash-secret", TOPIC_STATUS).await;
    assert_eq!(
        next_on(&mut late, TOPIC_STATUS).await,
        "online",
        "the ACL kept the dashboard off the box's topics"
    );

    // A wrong password: the box reports it and keeps serving; the right one again: connected.
    // (the password file is read at each connection; changing keep_alive makes the reload reconnect)
    std::fs::write(&pw, "wrong\n").unwrap();
    let config = daemon.config_path().to_path_buf();
    let edit = |from: &str, to: &str| {
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, text.replacen(from, to, 1)).unwrap();
    };
    edit("[mqtt]\n", "[mqtt]\nkeep_alive = \"30s\"\n");
    let r = daemon.post_json("/api/reload", &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let mqtt = daemon.health()["mqtt"].as_str().unwrap_or("").to_string();
        if mqtt.starts_with("down") {
            assert!(
                mqtt.to_lowercase().contains("refused")
                    || mqtt.to_lowercase().contains("auth")
                    || mqtt.to_lowercase().contains("password"),
                "{mqtt}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a wrong password was not reported: {mqtt}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.assert_running("with a wrong MQTT password");
    std::fs::write(&pw, "box-secret\n").unwrap();
    edit("keep_alive = \"30s\"", "keep_alive = \"45s\"");
    assert_eq!(daemon.post_json("/api/reload", &json!({})).status, 200);
    let deadline = std::time::Instant::now() + LONG;
    while daemon.health()["mqtt"] != "connected" {
        assert!(
            std::time::Instant::now() < deadline,
            "did not reconnect with the right password"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Makes a CA, a server certificate for 127.0.0.1 and a client certificate with openssl; returns the directory.
fn make_certs() -> tempfile::TempDir {
    let dir = test_dir("lk-certs-");
    let d = dir.path();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .expect("run openssl (install it: apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=linekeeper test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ];
    ca.extend_from_slice(&ec);
    run(&ca);
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for who in ["server", "client"] {
        let (key, csr, crt, ext) = (
            format!("{who}.key"),
            format!("{who}.csr"),
            format!("{who}.crt"),
            format!("{who}.ext"),
        );
        let subj = format!("/CN=linekeeper {who}");
        let mut req = vec![
            "req",
            "-subj",
            subj.as_str(),
            "-keyout",
            key.as_str(),
            "-out",
            csr.as_str(),
        ];
        req.extend_from_slice(&ec);
        run(&req);
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &crt,
            "-extfile",
            &ext,
        ]);
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_test_ca_and_a_client_certificate() {
    let certs = make_certs();
    let read = |f: &str| std::fs::read_to_string(certs.path().join(f)).unwrap();
    let plain = free_port();
    // The box's listener is TLS with client certificates required; a plain one on the side is for the watcher.
    let broker = Mosquitto::launch_custom(
        &format!(
            "cafile {{dir}}/ca.crt\ncertfile {{dir}}/server.crt\nkeyfile {{dir}}/server.key\nrequire_certificate true\n\
             allow_anonymous true\nlistener {plain} 127.0.0.1"
        ),
        &[("ca.crt", &read("ca.crt")), ("server.crt", &read("server.crt")), ("server.key", &read("server.key"))],
    );
    let watch = MqttWatch::start_topic(plain, "linekeeper/#").await;
    let pty = PtyPair::new();
    let modem = open_modem(&pty).await;
    let mut daemon = Daemon::new(&DaemonOptions::default(), pty.daemon_side(), broker.port());
    let c = certs.path();
    let tls = format!(
        "[mqtt]\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
        c.join("ca.crt").display(),
        c.join("client.crt").display(),
        c.join("client.key").display()
    );
    let text = std::fs::read_to_string(daemon.config_path())
        .unwrap()
        .replace("[mqtt]\n", &tls);
    std::fs::write(daemon.config_path(), text).unwrap();
    daemon.start();
    wait_modem_initialized(&modem).await;
    daemon.wait_link("up");
    daemon.authorize();
    watch
        .wait_for("status online over TLS", STEP, |m| {
            m.topic == TOPIC_STATUS && m.payload == "online"
        })
        .await;
    modem.caller_id(Some("13800138000"), Some("TLS")).await;
    modem.ring().await;
    watch
        .wait_event(TOPIC_TASK, "task.created over TLS", STEP, |e| {
            e["type"] == "task.created"
        })
        .await;
    assert_eq!(daemon.health()["mqtt"], "connected");

    // Without the client certificate the broker refuses the box; it says so and keeps serving.
    let text = std::fs::read_to_string(daemon.config_path()).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("client_"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(daemon.config_path(), without).unwrap();
    assert_eq!(daemon.post_json("/api/reload", &json!({})).status, 200);
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let mqtt = daemon.health()["mqtt"].as_str().unwrap_or("").to_string();
        if mqtt.starts_with("down") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a refused TLS handshake was not reported: {mqtt}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.assert_running("refused by the broker");
}

/// A broker ACL that denies one of the box's topics: the refusal is logged and counted, nothing crashes, and the
/// events after it still flow (the outbox does not get stuck on the refused one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_the_acl_denies_is_logged_and_the_rest_flows() {
    let passwd = passwd_file();
    // Everything of the box's but its alert topic.
    let acl = "user linekeeper\n\
               topic readwrite linekeeper/hq/status\ntopic readwrite linekeeper/hq/line/#\n\
               topic readwrite linekeeper/hq/queue\ntopic readwrite linekeeper/hq/events/#\n\
               topic readwrite linekeeper/hq/cmd/#\ntopic readwrite linekeeper/hq/agent/#\n\
               topic readwrite linekeeper/hq/report/#\n\
               topic write homeassistant/device/linekeeper_hq/config\ntopic read homeassistant/status\n\
               user dashboard\ntopic read linekeeper/#\n";
    let broker = Mosquitto::launch_custom(
        "allow_anonymous false\npassword_file {dir}/passwd\nacl_file {dir}/acl",
        &[("passwd", &passwd), ("acl", acl)],
    );
    let pty = PtyPair::new();
    let modem = open_modem(&pty).await;
    let opts = DaemonOptions {
        ring_timeout: "300ms".into(),
        callback_due: "1s".into(),
        ..DaemonOptions::default()
    };
    let mut daemon = Daemon::new(&opts, pty.daemon_side(), broker.port());
    let pw = daemon.dir().join("mqtt-password");
    std::fs::write(&pw, "box-secret\n").unwrap();
    let text = std::fs::read_to_string(daemon.config_path())
        .unwrap()
        .replace(
            "[mqtt]\n",
            &format!(
                "[mqtt]\nusername = \"linekeeper\"\npassword_file = \"{}\"\n",
                pw.display()
            ),
        );
    std::fs::write(daemon.config_path(), text).unwrap();
    let (_dash, mut seen) = client(broker.port(), "dashboard", "dash-secret", "linekeeper/#").await;
    daemon.start();
    wait_modem_initialized(&modem).await;
    daemon.wait_link("up");
    // A missed call whose callback is due in 1 s: task.overdue (allowed) and alert.task_overdue (denied).
    modem.caller_id(Some("13800000001"), Some("ACL")).await;
    modem.ring().await;
    next_matching(&mut seen, "linekeeper/hq/events/task", |p| {
        p.contains("\"task.overdue\"")
    })
    .await;
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let log =
            std::fs::read_to_string(daemon.dir().join("run-1.stderr.log")).unwrap_or_default();
        if log.contains("the broker refused a publish") && log.contains("linekeeper/hq/alert") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the refused alert was not logged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    modem.caller_id(Some("13800000002"), Some("AFTER")).await;
    modem.ring().await;
    next_matching(&mut seen, "linekeeper/hq/events/call", |p| {
        p.contains("138****0002") && p.contains("call.ended")
    })
    .await;
    let metrics = ureq::get(&daemon.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("linekeeper_mqtt_refused_total") && !l.ends_with(" 0")),
        "{metrics}"
    );
    daemon.assert_running("after the broker refused a publish");
}
