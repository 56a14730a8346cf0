//! `deploy/kubernetes`: the manifests cannot be applied here, so they are parsed and the
//! fields that make a split load correct are checked: an Indexed Job whose parallelism,
//! completions and `--segment I/N` agree, one shared start, no retries of a measurement,
//! the scenario and results volumes wired to the ConfigMap and the claim that exist, a
//! merge Job over the same results, and a scenario that loadgate accepts.

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

fn load(name: &str) -> Value {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[k],
    })
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string: {:?}", at(v, path)))
}

fn n(v: &Value, path: &str) -> u64 {
    at(v, path)
        .as_u64()
        .unwrap_or_else(|| panic!("{path} is not a number: {:?}", at(v, path)))
}

/// The container's shell script.
fn script(job: &Value) -> String {
    let c = at(job, "spec.template.spec.containers.0");
    assert_eq!(s(c, "command.0"), "/bin/sh");
    s(c, "args.0").to_string()
}

fn mounts(job: &Value) -> Vec<(String, String)> {
    at(job, "spec.template.spec.containers.0.volumeMounts")
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| (s(m, "name").to_string(), s(m, "mountPath").to_string()))
        .collect()
}

fn volume<'a>(job: &'a Value, name: &str) -> &'a Value {
    at(job, "spec.template.spec.volumes")
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| s(v, "name") == name)
        .unwrap_or_else(|| panic!("no volume {name}"))
}

#[test]
fn the_indexed_job_runs_every_segment_once_from_one_start() {
    let job = load("segments-job.yaml");
    assert_eq!(s(&job, "kind"), "Job");
    assert_eq!(s(&job, "spec.completionMode"), "Indexed");
    let count = n(&job, "spec.completions");
    assert_eq!(
        n(&job, "spec.parallelism"),
        count,
        "every segment runs at once"
    );
    assert_eq!(
        n(&job, "spec.backoffLimit"),
        0,
        "a measurement is never retried"
    );
    assert_eq!(s(&job, "spec.template.spec.restartPolicy"), "Never");
    let sh = script(&job);
    assert!(
        sh.contains(&format!("--segment $((JOB_COMPLETION_INDEX+1))/{count}")),
        "the segment argument matches completions = {count}:\n{sh}"
    );
    assert!(sh.contains("--start-at \"$START_AT\""), "{sh}");
    assert!(sh.contains("loadgate run /scenario/scenario.toml"), "{sh}");
    assert!(
        sh.contains("--out \"/results/$START_AT/segment-$i\""),
        "{sh}"
    );
    let env = at(&job, "spec.template.spec.containers.0.env");
    let start = env
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| s(e, "name") == "START_AT")
        .expect("START_AT is set");
    assert_eq!(s(start, "value"), "__START_AT__", "run.sh fills it in");
    // API_TOKEN from a Secret, never written into a manifest.
    let token = env
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| s(e, "name") == "API_TOKEN")
        .expect("API_TOKEN is passed");
    assert!(at(token, "value").is_null());
    assert_eq!(s(token, "valueFrom.secretKeyRef.key"), "token");

    let m = mounts(&job);
    assert!(
        m.contains(&("scenario".into(), "/scenario".into())),
        "{m:?}"
    );
    assert!(m.contains(&("results".into(), "/results".into())), "{m:?}");
    let cm = load("configmap.yaml");
    let pvc = load("pvc.yaml");
    assert_eq!(
        s(volume(&job, "scenario"), "configMap.name"),
        s(&cm, "metadata.name")
    );
    assert_eq!(
        s(volume(&job, "results"), "persistentVolumeClaim.claimName"),
        s(&pvc, "metadata.name")
    );
    assert_eq!(
        s(&pvc, "spec.accessModes.0"),
        "ReadWriteMany",
        "pods may share no node"
    );
}

#[test]
fn the_merge_job_merges_the_same_results_and_its_exit_code_is_the_verdict() {
    let seg = load("segments-job.yaml");
    let job = load("merge-job.yaml");
    assert_eq!(s(&job, "kind"), "Job");
    assert_eq!(n(&job, "spec.backoffLimit"), 0);
    let sh = script(&job);
    assert!(
        sh.contains("loadgate merge /results/\"$START_AT\"/segment-*"),
        "{sh}"
    );
    assert!(sh.contains("--out \"/results/$START_AT/merged\""), "{sh}");
    assert!(mounts(&job).contains(&("results".into(), "/results".into())));
    assert_eq!(
        s(volume(&job, "results"), "persistentVolumeClaim.claimName"),
        s(volume(&seg, "results"), "persistentVolumeClaim.claimName")
    );
    // run.sh fills the same placeholders in both.
    let run = std::fs::read_to_string(dir().join("run.sh")).unwrap();
    for placeholder in ["__IMAGE__", "__START_AT__"] {
        assert!(run.contains(placeholder));
        for j in [&seg, &job] {
            assert!(serde_yaml_ng::to_string(j).unwrap().contains(placeholder));
        }
    }
    // Issue 19: the target and the claim's storage class are the user's, filled by run.sh;
    // no host is written into a manifest, and the date works with GNU and BSD date.
    assert!(run.contains("__TARGET_URL__") && run.contains("__STORAGE_CLASS__"));
    assert!(serde_yaml_ng::to_string(&seg)
        .unwrap()
        .contains("__TARGET_URL__"));
    assert!(!serde_yaml_ng::to_string(&seg)
        .unwrap()
        .contains("example.com"));
    assert_eq!(
        s(&load("pvc.yaml"), "spec.storageClassName"),
        "__STORAGE_CLASS__"
    );
    assert!(run.contains("date -u -r"), "a BSD date fallback");
    assert!(
        run.contains(".status.failed"),
        "a failed segment ends the wait"
    );
}

#[test]
fn the_configmap_scenario_is_one_loadgate_accepts() {
    let cm = load("configmap.yaml");
    let scenario = cm["data"]["scenario.toml"]
        .as_str()
        .expect("data.scenario.toml");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("scenario.toml"), scenario).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_loadgate"))
        .current_dir(tmp.path())
        .args(["validate", "scenario.toml"])
        .env("TARGET_URL", "https://staging.example.com")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The Jobs' own shell scripts, run here: four segment pods and the merge pod, with the
/// volumes as local folders, against a local target and a short load.
#[test]
fn the_jobs_scripts_run_a_split_load_and_merge_it_on_this_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let (scenario_dir, results) = (tmp.path().join("scenario"), tmp.path().join("results"));
    std::fs::create_dir_all(&scenario_dir).unwrap();
    std::fs::create_dir_all(&results).unwrap();
    std::fs::write(
        scenario_dir.join("scenario.toml"),
        r#"name = "split"
target = "${TARGET_URL}"
[[endpoint]]
name = "root"
path = "/"
[load]
model = "open"
stages = [{ duration = "2s", target_rps = 200 }]
max_late_ratio = 0.5
[slo]
budgets = ["p95 < 1s", "throughput > 190rps"]
"#,
    )
    .unwrap();
    let target = loadgate_target::loopback("[[route]]\npath = \"/\"\n");
    let local = |job: &Value| {
        script(job)
            .replace("/scenario/", &format!("{}/", scenario_dir.display()))
            .replace("/results/", &format!("{}/", results.display()))
    };
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_loadgate"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let start = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    let start_at = humantime::format_rfc3339_seconds(start).to_string();
    let sh = |script: &str, index: Option<u64>| {
        let mut c = std::process::Command::new("/bin/sh");
        c.args(["-c", script])
            .env("PATH", &path)
            .env("START_AT", &start_at)
            .env("TARGET_URL", target.base_url())
            .env_remove("LOADGATE_TARGET")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(i) = index {
            c.env("JOB_COMPLETION_INDEX", i.to_string());
        }
        c.spawn().unwrap()
    };
    let seg = load("segments-job.yaml");
    let count = n(&seg, "spec.completions");
    let pods: Vec<_> = (0..count).map(|i| sh(&local(&seg), Some(i))).collect();
    for (i, p) in pods.into_iter().enumerate() {
        let o = p.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "pod {i}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Each segment judged its throughput budget on its quarter of it.
    let one: serde_json::Value = serde_json::from_slice(
        &std::fs::read(results.join(&start_at).join("segment-1/summary.json")).unwrap(),
    )
    .unwrap();
    let tp = one["slo"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["expr"].as_str().unwrap().starts_with("throughput"))
        .unwrap();
    assert_eq!(tp["threshold"], 47.5, "{tp}");
    assert!(
        tp["expr"].as_str().unwrap().contains("segment 1/4's share"),
        "{tp}"
    );
    let o = sh(&local(&load("merge-job.yaml")), None)
        .wait_with_output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "the merged load passes: {out}");
    let merged = results.join(&start_at).join("merged");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["overall"]["sent"], 400, "{out}");
    assert_eq!(
        summary["merged_from"].as_array().unwrap().len() as u64,
        count
    );
    assert!(merged.join("report.html").exists());
}

/// `deploy/ci`: the GitHub Actions workflow and the GitLab job are whole files a user can
/// copy (issue 19), and their gate command runs as written (against the embedded
/// target, for a second).
#[test]
fn the_ci_files_are_complete_and_their_gate_command_runs() {
    let ci = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/ci");
    let read = |f: &str| -> Value {
        let text = std::fs::read_to_string(ci.join(f)).unwrap();
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{f}: {e}"))
    };
    let gh = read("github-actions.yml");
    assert!(
        !gh["on"].is_null() && !gh["jobs"]["load-gate"].is_null(),
        "a whole workflow"
    );
    let steps = gh["jobs"]["load-gate"]["steps"].as_sequence().unwrap();
    let gate = steps
        .iter()
        .filter_map(|st| st["run"].as_str())
        .find(|r| r.starts_with("loadgate run"))
        .expect("a loadgate run step");
    assert!(
        gate.contains("--summary-md \"$GITHUB_STEP_SUMMARY\""),
        "{gate}"
    );
    let upload = steps
        .iter()
        .find(|st| {
            st["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        })
        .expect("an upload step");
    assert_eq!(upload["if"], "always()");
    let uploaded = upload["with"]["path"].as_str().unwrap();
    assert!(
        !uploaded.contains("latest"),
        "reports/latest is a link: {uploaded}"
    );
    assert!(
        gate.contains(&format!("--out {}", uploaded.trim_end_matches('/'))),
        "{gate}"
    );
    // Issue 19 (a new user): the files only worked inside loadgate's own repository
    // (`cargo install --path crates/cli`, `scenarios/...`), and GitLab's cache key missed
    // source changes, keeping a stale binary. They install loadgate from its own
    // repository at a pinned commit, cache by that commit, and read the user's scenario.
    let cache = steps
        .iter()
        .find(|st| {
            st["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/cache"))
        })
        .expect("a cache step");
    assert!(
        cache["with"]["key"]
            .as_str()
            .unwrap()
            .contains("env.LOADGATE_REF"),
        "{cache:?}"
    );
    let install = steps
        .iter()
        .filter_map(|st| st["run"].as_str())
        .find(|r| r.contains("cargo install"))
        .expect("an install step");
    for text in [install.to_string(), gate.to_string()] {
        assert!(
            !text.contains("--path crates/cli") && !text.contains("scenarios/"),
            "{text}"
        );
    }
    assert!(
        install.contains("--git \"$LOADGATE_GIT\" --rev \"$LOADGATE_REF\""),
        "{install}"
    );
    for var in ["LOADGATE_GIT", "LOADGATE_REF", "LOADGATE_SCENARIO"] {
        assert!(gh["env"][var].is_string(), "{var}");
    }
    // The binary is saved even when the gate fails (actions/cache saves only after a
    // successful job), and the load goes to TARGET_URL whatever the scenario names (a
    // scenario from `init` names the URL it was written for).
    let save = steps
        .iter()
        .find(|st| st["uses"].as_str() == Some("actions/cache/save@v4"))
        .expect("a cache save step");
    assert_eq!(save["with"]["key"], cache["with"]["key"]);
    assert!(gate.contains("--target \"$TARGET_URL\""), "{gate}");

    let gl = read("gitlab-ci.yml");
    let job = &gl["load-gate"];
    let script: Vec<&str> = job["script"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let gl_gate = script
        .iter()
        .find(|l| l.starts_with("loadgate run"))
        .expect("a loadgate run line");
    assert_eq!(job["artifacts"]["when"], "always");
    assert_eq!(
        job["artifacts"]["reports"]["junit"],
        "reports/gate/junit.xml"
    );
    assert!(gl_gate.contains("--out reports/gate"), "{gl_gate}");
    assert_eq!(job["cache"]["key"], "loadgate-$LOADGATE_REF");
    assert_eq!(job["cache"]["when"], "always");
    assert!(gl_gate.contains("--target \"$TARGET_URL\""), "{gl_gate}");
    assert!(script.iter().any(|l| l.contains(
        "cargo install --locked --git \"$LOADGATE_GIT\" --rev \"$LOADGATE_REF\" loadgate"
    )));
    for var in ["LOADGATE_GIT", "LOADGATE_REF", "LOADGATE_SCENARIO"] {
        assert!(job["variables"][var].is_string(), "{var}");
    }

    // The command itself, as written, against the embedded target for a second.
    let work = tempfile::tempdir().unwrap();
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/pre-deploy-gate.toml");
    let md = work.path().join("step-summary.md");
    // Outside GitHub Actions the summary variable is empty: the same command still runs.
    let unset = gate.replace("\"$GITHUB_STEP_SUMMARY\"", "\"\"");
    for line in [gate.to_string(), gl_gate.to_string(), unset] {
        let args: Vec<String> = line
            .split_whitespace()
            .skip(1)
            .map(|a| {
                a.trim_matches('"')
                    .replace("$LOADGATE_SCENARIO", scenario.to_str().unwrap())
                    .replace("$GITHUB_STEP_SUMMARY", md.to_str().unwrap())
                    .replace("$TARGET_URL", "embedded")
            })
            .chain(["--duration", "1s", "-q"].map(String::from))
            .collect();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_loadgate"))
            .current_dir(work.path())
            .args(&args)
            .env_remove("LOADGATE_TARGET")
            .output()
            .unwrap();
        let code = o.status.code().unwrap();
        // Any verdict (a 1 s run on a busy machine may be INVALID): the command line
        // itself is what is checked, so never a usage, reach or output error.
        assert!(
            [0, 1, 3].contains(&code),
            "{args:?}: exit {code}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(work.path().join("reports/gate/summary.json").exists());
    }
    assert!(
        std::fs::read_to_string(&md).unwrap().contains("loadgate"),
        "the step summary"
    );
}
