//! `linekeeper demo`: the whole product on an embedded default, with a simulated caller-ID modem playing a
//! realistic stream of calls (answered, missed, a repeat caller, a withheld number) through the real modem
//! adapter, parser, engine, store, MQTT uplink and web server.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch;
use tracing::info;

use crate::adapters::modem::link::{BoxPort, Opener};
use crate::adapters::modem::sim::{SimModem, SimOptions};
use crate::config::Config;
use crate::runtime::daemon::{run, RunOptions};

pub struct DemoOptions {
    pub listen: String,
    pub mqtt_host: String,
    pub mqtt_port: u16,
    /// Plays the calls this many times faster (tests use 10).
    pub speed: f64,
}

/// One call of the demo script.
struct DemoCall {
    number: Option<&'static str>,
    name: Option<&'static str>,
    rings: u32,
    /// Some(talk time): answered after the last ring; None: the caller gives up.
    talk: Option<u64>,
}

const SCRIPT: &[DemoCall] = &[
    DemoCall {
        number: Some("13800138000"),
        name: Some("ZHANG WEI"),
        rings: 2,
        talk: Some(20),
    },
    DemoCall {
        number: Some("13912345678"),
        name: Some("LI NA"),
        rings: 3,
        talk: None,
    },
    DemoCall {
        number: None,
        name: Some("WITHHELD"),
        rings: 1,
        talk: Some(12),
    },
    DemoCall {
        number: Some("13912345678"),
        name: Some("LI NA"),
        rings: 2,
        talk: None,
    },
    DemoCall {
        number: Some("075583001234"),
        name: Some("深圳华强电子"),
        rings: 3,
        talk: Some(45),
    },
    DemoCall {
        number: Some("15800001111"),
        name: None,
        rings: 5,
        talk: None,
    },
];

fn demo_config(o: &DemoOptions, store: &std::path::Path) -> (Config, String) {
    let ring_timeout_ms = (5000.0 / o.speed).max(200.0) as u64;
    let text = format!(
        r#"
[site]
id = "demo"
name = "linekeeper demo office"
timezone = "Asia/Shanghai"
language = "en"
[store]
path = "{store}"
[[line]]
id = "line1"
kind = "modem"
device = "(simulated modem)"
ring_timeout = "{ring_timeout_ms}ms"
answer_detect = true
reconnect_max = "2s"
[mqtt]
host = "{host}"
port = {port}
reconnect_max = "30s"
[web]
listen = "{listen}"
[policy]
callback_due = "24h"
[[agent]]
id = "alice"
name = "Alice Wang"
[[agent]]
id = "bob"
name = "Bob Li"
"#,
        store = store.display(),
        host = o.mqtt_host,
        port = o.mqtt_port,
        listen = o.listen,
    );
    // The embedded default is ours; a failure here is a bug, reported as such.
    let cfg = Config::parse(&text).unwrap_or_else(|p| panic!("demo config invalid: {p:?}"));
    (cfg, text)
}

pub async fn demo(o: DemoOptions) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("linekeeper-demo-")
        .tempdir()?;
    let (cfg, cfg_text) = demo_config(&o, dir.path());
    let (token, password) = {
        let store = crate::store::Store::open(dir.path())?;
        let now = chrono::Utc::now();
        // A throwaway store: the demo's admin login need not be changed first.
        let password = crate::accounts::reset_password(&store, "admin", now)?;
        if let Some(mut u) = crate::accounts::user(&store, "admin")? {
            u.must_change = false;
            crate::accounts::put_user(&store, &u)?;
        }
        (
            crate::auth::create_token(&store, "demo", crate::model::Role::Admin, now)?,
            password,
        )
    };
    // The configuration page edits this file; reloads read it.
    let config_path = dir.path().join("linekeeper.toml");
    std::fs::write(&config_path, cfg_text)?;

    // Every (re)open of the line makes a fresh in-memory serial link with a simulated modem on its far end.
    let (modem_tx, modem_rx) = watch::channel::<Option<SimModem>>(None);
    let opener: Opener = Box::new(move || {
        let (ours, theirs) = tokio::io::duplex(4096);
        modem_tx.send_replace(Some(SimModem::spawn(theirs, SimOptions::default())));
        Box::pin(async move { Ok(Box::new(ours) as BoxPort) })
    });
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let opts = RunOptions {
        openers: HashMap::from([("line1".to_string(), opener)]),
        ready: Some(ready_tx),
        config_path: Some(config_path),
        ..Default::default()
    };
    let speed = o.speed;
    let mqtt = format!("{}:{}", o.mqtt_host, o.mqtt_port);
    tokio::spawn(async move {
        if let Ok(addr) = ready_rx.await {
            println!(
                "\nlinekeeper demo is running: a simulated caller-ID modem plays calls into line1.\n\
                 \n  web page   http://{addr}/   login: admin / {password}\
                 \n  API token  {token}\
                 \n  try        curl -H 'Authorization: Bearer {token}' http://{addr}/api/calls\
                 \n             curl -H 'Authorization: Bearer {token}' http://{addr}/api/tasks\
                 \n             curl -N -H 'Authorization: Bearer {token}' http://{addr}/api/events\
                 \n  MQTT       mosquitto_sub -h {host} -p {port} -t 'linekeeper/demo/#' -v   (events wait in the outbox until a broker answers on {mqtt})\
                 \n\nThe store is a temporary directory, deleted on exit. Stop with Ctrl-C.\n",
                host = mqtt.split(':').next().unwrap_or("127.0.0.1"),
                port = mqtt.rsplit(':').next().unwrap_or("1883"),
            );
        }
        play(modem_rx, speed).await;
    });
    run(cfg, opts, crate::runtime::daemon::signals()).await?;
    drop(dir);
    Ok(())
}

async fn play(mut modem: watch::Receiver<Option<SimModem>>, speed: f64) {
    let secs = |s: f64| Duration::from_secs_f64(s / speed);
    tokio::time::sleep(secs(2.0)).await;
    loop {
        for call in SCRIPT {
            // Wait for a live, initialised modem (the line may be reconnecting).
            let sim = loop {
                let current = modem.borrow_and_update().clone();
                if let Some(sim) = current.filter(|s| s.is_running()) {
                    break sim;
                }
                if modem.changed().await.is_err() {
                    return;
                }
            };
            sim.wait_initialized().await;
            info!(
                number = call.number.unwrap_or("withheld"),
                rings = call.rings,
                answered = call.talk.is_some(),
                "demo: incoming call"
            );
            sim.ring().await;
            tokio::time::sleep(secs(0.5)).await;
            sim.caller_id(call.number, call.name).await;
            for _ in 1..call.rings {
                tokio::time::sleep(secs(3.0)).await;
                sim.ring().await;
            }
            if let Some(talk) = call.talk {
                tokio::time::sleep(secs(1.5)).await;
                sim.offhook().await;
                tokio::time::sleep(secs(talk as f64)).await;
                sim.onhook().await;
            }
            tokio::time::sleep(secs(12.0)).await;
        }
    }
}
