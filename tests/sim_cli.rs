//! `chainsim sim` from the command line: one JSON object with `--json`, the files of
//! `--out`, and one readable line for bad input.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn sim(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chainsim"))
        .arg("sim")
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn json_is_one_object_with_the_promised_fields_and_out_writes_files() {
    let dir = std::env::temp_dir().join(format!("chainsim-sim-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let (ok, stdout, stderr) = sim(&["--scenario", "classroom", "--blocks", "5", "--json", "--out", d]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for key in [
        "nodes",
        "blocks_mined",
        "stale_blocks",
        "stale_rate",
        "events",
        "wall_s",
        "seed",
    ] {
        assert!(v.get(key).is_some(), "no {key} in {stdout}");
    }
    for key in ["p50", "mean", "p90", "p99"] {
        assert!(v["reception_ms"].get(key).is_some(), "no reception_ms.{key}");
    }
    assert_eq!(v["nodes"], 30);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["blocks_mined"], v["blocks_mined"]);
    let csv = std::fs::read_to_string(dir.join("blocks.csv")).unwrap();
    assert_eq!(csv.lines().count() as u64, 1 + v["blocks_mined"].as_u64().unwrap());
    let svg = std::fs::read_to_string(dir.join("reception_cdf.svg")).unwrap();
    assert!(svg.starts_with("<svg"));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("stale rate"),
        "a self-contained report"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // A sweep's report plots the stale rate against the swept values.
    let sweep_dir = std::env::temp_dir().join(format!("chainsim-sim-sweep-{}", std::process::id()));
    let d = sweep_dir.to_str().unwrap();
    let (ok, _, stderr) = sim(&[
        "--scenario",
        "classroom",
        "--blocks",
        "3",
        "--sweep",
        "relay=announce,push",
        "--out",
        d,
    ]);
    assert!(ok, "{stderr}");
    let svg = std::fs::read_to_string(sweep_dir.join("stale_rate.svg")).unwrap();
    assert!(
        svg.contains("announce") && svg.contains("push"),
        "the values label the axis"
    );
    let html = std::fs::read_to_string(sweep_dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<tr><td>").count(), 2, "one row per run");
    let _ = std::fs::remove_dir_all(&sweep_dir);
}

#[test]
fn bad_input_fails_with_one_line() {
    let file = std::env::temp_dir().join(format!("chainsim-bad-{}.toml", std::process::id()));
    std::fs::write(&file, "name = \"x\"\nnodes = \"many\"\n").unwrap();
    let edges = std::env::temp_dir().join(format!("chainsim-bad-edges-{}.txt", std::process::id()));
    std::fs::write(&edges, "0 1\n1 two\n").unwrap();
    let classroom = include_str!("../scenarios/classroom.toml");
    let change = std::env::temp_dir().join(format!("chainsim-bad-change-{}.toml", std::process::id()));
    let bad_change = "\n[[link_changes]]\nat_s = 5.0\nregions = [\"mars\"]\ncut = true\n";
    std::fs::write(&change, format!("{classroom}{bad_change}")).unwrap();
    for (args, says) in [
        (vec!["--scenario", "no-such-network"], "unknown scenario"),
        (vec!["--scenario", file.to_str().unwrap()], "line 2"),
        (vec!["--nodes", "1"], "at least 2 nodes"),
        (vec!["--relay", "shout"], "invalid value"),
        (
            vec!["--edges", edges.to_str().unwrap()],
            "line 2: expected two node numbers",
        ),
        (vec!["--edges", "/no/such/edges.txt"], "edges file /no/such/edges.txt"),
        (
            vec!["--scenario", change.to_str().unwrap()],
            "link_changes[0]: unknown region \"mars\"",
        ),
        (vec!["--tx-rate", "-1"], "rate_per_s must be a positive number"),
        (vec!["--set", "network.speed=3"], "unknown field `speed`"),
        (vec!["--set", "quiet_s=soon"], "quiet_s: invalid type"),
        (
            vec!["--set", "topology.outbound=-2"],
            "topology.outbound: invalid value",
        ),
        (vec!["--set", "network.processing_ms=-1"], "processing_ms"),
        (vec!["--sweep", "mining.wobble=1,2"], "unknown field `wobble`"),
    ] {
        let (ok, stdout, stderr) = sim(&args);
        assert!(!ok, "{args:?} succeeded");
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        if !says.starts_with("invalid value") {
            assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        }
    }
    for f in [&file, &edges, &change] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn an_edges_file_gives_the_graph_and_a_tx_rate_reports_transactions() {
    let edges = std::env::temp_dir().join(format!("chainsim-edges-{}.txt", std::process::id()));
    std::fs::write(&edges, "# a line of four\n0 1\n1 2\n2 3\n").unwrap();
    let args = [
        "--nodes",
        "4",
        "--blocks",
        "3",
        "--json",
        "--edges",
        edges.to_str().unwrap(),
    ];
    let (ok, stdout, stderr) = sim(&args);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["links"], 3, "the file's three links");
    assert!(v.get("transactions").is_none(), "no load by default");
    let _ = std::fs::remove_file(&edges);

    let (ok, stdout, stderr) = sim(&["--blocks", "5", "--tx-rate", "2", "--json"]);
    assert!(ok, "{stderr}");
    let t = &serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["transactions"];
    assert!(t["submitted"].as_u64().unwrap() > 0, "{t}");
    assert!(t["confirmed"].as_u64().unwrap() > 0, "{t}");
    assert_eq!(t["lost"], 0);
    assert!(t["confirmation_ms"]["p50"].as_f64().unwrap() > 0.0, "{t}");
}

#[test]
fn a_sweep_prints_one_object_with_a_run_per_value_and_seed() {
    let (ok, stdout, stderr) = sim(&["--sweep", "interval=30,5", "--seeds", "2", "--blocks", "3", "--json"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["sweep"], "interval");
    assert_eq!(v["runs"].as_array().unwrap().len(), 4);
    assert_eq!(v["runs"][3]["interval_s"], 5.0);
    assert_eq!(v["runs"][3]["seed"], 2);
}

#[test]
fn set_changes_any_field_and_a_sweep_can_vary_one_by_its_path() {
    // Classroom's 30 nodes dial 4 peers each: 120 links; with two, 60.
    let (ok, stdout, stderr) = sim(&[
        "--set",
        "topology.outbound=2",
        "--set",
        "quiet_s=900",
        "--blocks",
        "3",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["links"], 60, "{stdout}");
    let (ok, stdout, stderr) = sim(&["--sweep", "network.processing_ms=1,50", "--blocks", "3", "--json"]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["sweep"], "network.processing_ms");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    // Validation 50 times slower: every block arrives later.
    let p50 = |i: usize| runs[i]["reception_ms"]["p50"].as_f64().unwrap();
    assert!(p50(1) > p50(0), "{stdout}");
}

#[test]
fn a_quiet_period_that_runs_out_before_the_last_blocks_spread_is_reported() {
    let args = ["--scenario", "classroom", "--blocks", "10", "--interval", "1", "--json"];
    let (ok, stdout, stderr) = sim(&[&args[..], &["--set", "quiet_s=0.2"]].concat());
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["tips_at_end"].as_u64().unwrap() > 1, "{stdout}");
    assert_eq!(v["quiet_cut_short"], true, "{stdout}");
    assert!(stderr.contains("the quiet period ran out"), "{stderr}");
    assert!(stderr.contains("--set quiet_s="), "{stderr}");
    // Given its default time, the same run ends on one tip: no field, no note.
    let (ok, stdout, stderr) = sim(&args);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["tips_at_end"], 1, "{stdout}");
    assert!(v.get("quiet_cut_short").is_none(), "{stdout}");
    assert!(!stderr.contains("quiet period"), "{stderr}");
}
