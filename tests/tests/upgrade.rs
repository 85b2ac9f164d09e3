//! Upgrading from linekeeper 0.1, as a technician does it: the new binary is started on the store directory the
//! old one left (a sled store that linekeeper 0.1.0 wrote: `daemon/tests/fixtures/sled-0.1.0/`). The daemon
//! migrates it at start, logs it, and then serves the old calls and tasks, with the old API token.

use std::path::Path;

use linekeeper_e2e::*;
use serde_json::Value;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_starts_on_a_linekeeper_0_1_store_and_serves_its_records() {
    let fixture = workspace_root().join("daemon/tests/fixtures/sled-0.1.0");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("expected.json")).unwrap())
            .unwrap();
    let broker = Mosquitto::launch();
    let pty = PtyPair::new();
    let modem = open_modem(&pty).await;
    let mut daemon = Daemon::new(&DaemonOptions::default(), pty.daemon_side(), broker.port());
    copy_dir(&fixture.join("store"), daemon.store_path());
    daemon.start();
    wait_modem_initialized(&modem).await;
    // The token linekeeper 0.1 made still works.
    daemon.use_token(expected["token"].as_str().unwrap().to_string());
    let calls = daemon.get_array("/api/calls?limit=1000");
    let old_calls = expected["calls"].as_array().unwrap();
    // The call 0.1 left ringing is closed at start as interrupted, as after any restart.
    assert_eq!(calls.len(), old_calls.len(), "{calls:?}");
    for c in old_calls {
        let now = calls
            .iter()
            .find(|n| n["id"] == c["id"])
            .unwrap_or_else(|| panic!("call {} is missing after the upgrade", c["id"]));
        assert_eq!(now["number"], c["number"], "{now}");
        if !c["outcome"].is_null() {
            assert_eq!(now["outcome"], c["outcome"], "{now}");
        } else {
            assert_eq!(now["outcome"], "interrupted", "{now}");
        }
    }
    let tasks = daemon.get_array("/api/tasks?state=all");
    let old_tasks = expected["tasks"].as_array().unwrap();
    assert!(
        old_tasks
            .iter()
            .all(|t| tasks.iter().any(|n| n["id"] == t["id"])),
        "a task of 0.1 is missing: {tasks:?}"
    );
    assert!(
        std::fs::read_dir(daemon.dir())
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .any(|log| log.contains("store migrated to redb")),
        "the migration is logged"
    );
    assert!(daemon.store_path().join("linekeeper.redb").is_file());
}
