//! `loadgate validate`: every mistake at once with file:line:column, the same files
//! accepted and refused as `run`, and every scenario and TOML block the project ships.

mod common;

use std::process::Command;

use common::*;

#[test]
fn validate_reports_every_error_and_sends_nothing() {
    let c = Case::new("name = \"t\"\ntarget = \"embedded\"\n[[endpoint]]\nname = \"a\"\npath = \"x\"\n[load]\nmodel = \"open\"\nstages = [{ duration = \"soon\", target_rps = 5 }]\n[slo]\nbudgets = [\"p95 < 2\"]\n");
    let o = c.loadgate(&["validate", "{s}"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let t = text(&o);
    for want in ["s.toml:5:8:", "s.toml:8:24:", "s.toml:10:20:"] {
        assert!(t.contains(want), "missing {want} in:\n{t}");
    }
    let good = Case::new(&scenario(OPEN_2S, ""));
    let o = good.loadgate(&["validate", "{s}"], &[]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("ok: scenario `t`"));
}

#[test]
fn every_shipped_scenario_validates() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let o = Command::new(env!("CARGO_BIN_EXE_loadgate"))
        .arg("validate")
        .args(&files)
        .env("TARGET_URL", "https://staging.example.com")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o));
    // Every embedded-target profile they name loads too.
    for f in std::fs::read_dir(root.join("profiles")).unwrap() {
        let p = f.unwrap().path();
        loadgate_target::Profile::load(&p).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn validate_checks_the_target_profile_too() {
    let c = Case::new(&scenario(OPEN_2S, ""));
    c.profile("[[route]]\npath = \"/\"\nlatency = { dist = \"gamma\" }\n");
    let o = c.loadgate(&["validate", "{s}"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("profile.toml:3:11: unknown latency dist `gamma`"),
        "{}",
        text(&o)
    );
}

/// Issue 17: with `target = "${TARGET_URL}"` and the variable unset, `--target` (or
/// `LOADGATE_TARGET`) must rescue `run`, as the shipped scenarios' comments promise, and
/// `validate` takes the same flag, so the two accept and refuse the same files.
#[test]
fn regression_a_target_override_rescues_an_unset_target_variable_in_validate_and_run() {
    let c = Case::new(&scenario(OPEN_2S, "").replace(
        "target = \"embedded\"",
        "target = \"${LG_UNSET_TARGET_URL}\"",
    ));
    let o = c.loadgate(&["validate", "{s}"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("s.toml:2:11: environment variable `LG_UNSET_TARGET_URL` is not set"),
        "{}",
        text(&o)
    );
    let by_flag = ["validate", "{s}", "--target", "embedded"];
    let by_url = ["validate", "{s}", "--target", "https://staging.example.com"];
    for args in [&by_flag[..], &by_url[..]] {
        let o = c.loadgate(args, &[]);
        assert_eq!(code(&o), 0, "{args:?}: {}", text(&o));
    }
    let o = c.loadgate(&["validate", "{s}"], &[("LOADGATE_TARGET", "embedded")]);
    assert_eq!(code(&o), 0, "LOADGATE_TARGET: {}", text(&o));
    for (value, says) in [
        ("ftp://x", "--target: scheme `ftp` is not supported"),
        ("staging.example.com", "--target: not a valid URL"),
    ] {
        for cmd in [&["validate", "{s}"][..], &["run", "{s}", "--out", "{out}"]] {
            let o = c.loadgate(&[cmd, &["--target", value]].concat(), &[]);
            assert_eq!(code(&o), 2, "{cmd:?} {value}: {}", text(&o));
            assert!(text(&o).contains(says), "{cmd:?} {value}: {}", text(&o));
            assert!(text(&o).contains("hint: "), "{cmd:?} {value}: {}", text(&o));
        }
    }
    assert_never_started(&c);
    let o = c.loadgate(
        &["run", "{s}", "--out", "{out}", "-q", "--duration", "1s"],
        &[("LOADGATE_TARGET", "embedded")],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(c.summary()["target"], "embedded");
}

/// Issue 17: what `run` refuses, `validate` refuses first, with file:line:column and a
/// hint. A path with a space passed `validate`, then failed after the run directory was
/// made ("worker 1 failed: invalid uri character"); a 300-character name failed to make
/// the run directory at all.
#[test]
fn regression_validate_refuses_what_run_would_refuse() {
    let spaced = Case::new(&scenario(OPEN_2S, "").replace(
        "path = \"/api/intelligence/analyze\"",
        "path = \"/api/intelligence analyze\"",
    ));
    for cmd in [&["validate", "{s}"][..], &["run", "{s}", "--out", "{out}"]] {
        let o = spaced.loadgate(cmd, &[]);
        assert_eq!(code(&o), 2, "{cmd:?}: {}", text(&o));
        let t = text(&o);
        assert!(t.contains("s.toml:7:26: path has a space"), "{cmd:?}: {t}");
        assert!(t.contains("hint: write %20 for a space"), "{cmd:?}: {t}");
        assert_never_started(&spaced);
    }
    let long = Case::new(
        &scenario(OPEN_2S, "").replace("name = \"t\"", &format!("name = \"{}\"", "n".repeat(300))),
    );
    for cmd in [
        &["validate", "{s}"][..],
        &["run", "{s}", "--reports-dir", "reports"],
    ] {
        let o = long.loadgate(cmd, &[]);
        assert_eq!(code(&o), 2, "{cmd:?}: {}", text(&o));
        let t = text(&o);
        assert!(
            t.contains("s.toml:1:8: name is 300 bytes long"),
            "{cmd:?}: {t}"
        );
        assert!(!long.dir.path().join("reports").exists(), "{cmd:?}");
    }
}

/// Issue 19: every TOML block of the README is what it says: the scenario reference
/// validates as copied (beside the files it names), the `[capacity]` table validates
/// inside a scenario, and the target profile parses. A block of a new kind fails here
/// until this test checks it too.
#[test]
fn every_toml_block_in_the_readme_is_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 3, "{} blocks", blocks.len());
    for block in blocks {
        // An endpoint shown alone (a streamed one) validates inside a scenario.
        let fragment = block.contains("[[endpoint]]")
            && !block.lines().any(|l| l.trim_start().starts_with("target"));
        if fragment {
            let c = Case::new(&format!("{}\n{block}", scenario(OPEN_2S, "")));
            // The secrets a block reads from the environment, as its user exports them.
            let o = c.loadgate(&["validate", "{s}"], &[("PASSWORD", "a-password")]);
            assert_eq!(code(&o), 0, "the endpoint: {}", text(&o));
        } else if block.contains("[[endpoint]]") {
            let c = Case::new(block);
            std::fs::write(c.dir.path().join("users.csv"), "userId\nu-1\nu-2\n").unwrap();
            std::fs::create_dir_all(c.dir.path().join("profiles")).unwrap();
            std::fs::copy(
                concat!(env!("CARGO_MANIFEST_DIR"), "/../target/profiles/demo.toml"),
                c.dir.path().join("profiles/demo.toml"),
            )
            .unwrap();
            // The `[tls]` table's files, real ones (`validate` reads them).
            let ca = common::pki::Ca::new("Company CA");
            let (cert, _, key) = ca.issue(&["loadgate-client"], true);
            let certs = c.dir.path().join("certs");
            std::fs::create_dir_all(&certs).unwrap();
            std::fs::write(certs.join("company-ca.pem"), ca.pem()).unwrap();
            std::fs::write(certs.join("client.pem"), cert).unwrap();
            std::fs::write(certs.join("client.key"), common::pki::PemKey::pem_key(&key)).unwrap();
            let env = [
                ("TARGET_URL", "https://staging.example.com"),
                ("API_TOKEN", "tok-1234"),
            ];
            let o = c.loadgate(&["validate", "{s}"], &env);
            assert_eq!(code(&o), 0, "the scenario reference: {}", text(&o));
            let o = c.loadgate(&["validate", "{s}", "--target", "embedded"], &env);
            assert_eq!(code(&o), 0, "with the embedded target: {}", text(&o));
        } else if block.trim_start().starts_with("[capacity]") {
            let c = Case::new(&format!("{}\n{block}", scenario(OPEN_2S, "")));
            let o = c.loadgate(&["validate", "{s}"], &[]);
            assert_eq!(code(&o), 0, "the [capacity] table: {}", text(&o));
        } else if block.contains("[[route]]") {
            loadgate_target::Profile::parse("README profile", block)
                .unwrap_or_else(|e| panic!("the target profile: {e}"));
        } else {
            panic!("a README TOML block no test checks:\n{block}");
        }
    }
}
