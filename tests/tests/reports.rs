//! Reports as a supervisor fetches them: the JSON and the CSV (UTF-8 with a BOM) of today's daily report carry the
//! same figures, and `linekeeper report` prints the same while the daemon runs.

use linekeeper_e2e::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_report_by_api_csv_and_cli_agree() {
    let mut env = Env::start(DaemonOptions {
        ring_timeout: "300ms".into(),
        ..DaemonOptions::default()
    })
    .await;
    // two missed calls and one answered
    for n in ["13500000001", "13500000002"] {
        env.modem.caller_id(Some(n), Some("REPORT")).await;
        env.modem.ring().await;
        env.daemon.wait_call_ended_http(n);
    }
    env.modem.ring().await;
    env.modem
        .caller_id(Some("13500000003"), Some("REPORT"))
        .await;
    env.modem.offhook().await;
    env.modem.onhook().await;
    env.daemon.wait_call_ended_http("13500000003");

    let json = env.daemon.get("/api/reports/daily");
    assert_eq!(json.status, 200, "{}", json.body);
    let report = json.json();
    let kpis = &report["site_kpis"];
    assert_eq!(
        (
            kpis["offered"].as_u64(),
            kpis["answered"].as_u64(),
            kpis["missed"].as_u64()
        ),
        (Some(3), Some(1), Some(2)),
        "{report}"
    );
    assert_eq!(kpis["callbacks_opened"], 2);
    assert!(report["per_line"]["line1"].is_object());

    let csv = env.daemon.get("/api/reports/daily?format=csv");
    assert_eq!(csv.status, 200);
    assert!(
        csv.body.starts_with('\u{feff}'),
        "a byte-order mark so Excel reads UTF-8"
    );
    let parsed = linekeeper::report::parse_csv(&csv.body).expect("the CSV parses");
    let from_csv = serde_json::to_value(&parsed["site"]).unwrap();
    assert_eq!(&from_csv, kpis, "CSV and JSON carry the same figures");

    let cli = env.daemon.cli(&["report", "daily", "--format", "json"]);
    assert_eq!(cli.code, Some(0), "{cli}");
    let printed: Value = serde_json::from_str(&cli.stdout).expect("the CLI prints JSON");
    assert_eq!(
        &printed["site_kpis"], kpis,
        "the CLI (through the daemon's socket) agrees"
    );

    let bad = env.daemon.get("/api/reports/yearly");
    assert_eq!(bad.status, 404);
    let bad = env.daemon.get("/api/reports/daily?date=yesterday");
    assert_eq!(bad.status, 400);
    env.daemon.assert_running("after the report requests");
}
