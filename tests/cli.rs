//! Bad command-line input: a non-zero exit, one readable line on stderr, nothing created.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chainsim"))
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_node_settings_fail_with_one_line_and_touch_nothing() {
    let dir = std::env::temp_dir().join(format!("chainsim-cli-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let long = "m".repeat(65);
    for (args, says) in [
        (
            vec!["node", "--port", "0", "--data-dir", d, "--peer", "bad peer"],
            "invalid peer address",
        ),
        (
            vec!["node", "--port", "0", "--data-dir", d, "--peer", "host:0"],
            "invalid peer address",
        ),
        (
            vec!["node", "--port", "0", "--data-dir", d, "--miner", ""],
            "invalid miner name",
        ),
        (
            vec!["node", "--port", "0", "--data-dir", d, "--miner", &long],
            "longer than 64 bytes",
        ),
        (
            vec!["node", "--port", "0", "--data-dir", d, "--miner", " bob"],
            "must not begin or end with whitespace",
        ),
        (
            vec!["node", "--port", "0", "--data-dir", d, "--loss", "1.5"],
            "loss must be",
        ),
        (
            vec!["node", "--port", "0", "--data-dir", d, "--latency", "3600000"],
            "latency_ms must be at most",
        ),
        (
            vec!["node", "--port", "0", "--data-dir", d, "--mine", "auto", "--share", "0"],
            "share must be",
        ),
        (
            vec![
                "node",
                "--port",
                "0",
                "--data-dir",
                d,
                "--mine",
                "interval",
                "--block-time",
                "0",
            ],
            "block time must be",
        ),
    ] {
        let (ok, stderr) = run(&args);
        assert!(!ok, "{args:?} succeeded");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(says),
            "{args:?}: {stderr}"
        );
        assert!(!dir.exists(), "{args:?} created {d}");
    }
}

#[test]
fn malformed_flags_are_refused_by_the_parser() {
    for args in [
        vec!["node", "--port", "abc"],
        vec!["node", "--port", "70000"],
        vec!["demo", "--nodes", "0"],
        vec!["node", "--mine", "sometimes"],
        vec!["node", "--latency", "-5"],
        vec!["bench", "nope"],
        vec!["no-such-command"],
    ] {
        let (ok, stderr) = run(&args);
        assert!(!ok, "{args:?} succeeded");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
