//! Issue 18: a value from the environment never appears in any output. Every message
//! the scenario crate can give about an interpolated value shows the scenario's text
//! (`${API_TOKEN}`), the scenario lists every such value in `Scenario::secrets`, and the
//! target is shown without its secret parts.
//!
//! The environment is a lookup passed to `parse`, never the process's own.

use std::path::Path;

use loadgate_scenario::{parse, redact_url, Diagnostics, Scenario, Secrets, MIN_SECRET_LEN};

/// The secret every test hides; each variable below holds it.
const LEAK: &str = "sk-LEAK-123456";

fn env(name: &str) -> Option<String> {
    Some(match name {
        "API_TOKEN" => LEAK.to_string(),
        // A value with a character a path or a header cannot hold.
        "SPACED" => format!("{LEAK} x"),
        "CTRL" => format!("{LEAK}\u{1}"),
        // A value that holds a template placeholder that does not compile.
        "TPL" => format!("{{{{{LEAK}}}}}"),
        "TARGET_URL" => "https://bob-user:pw-secret-9@api.example.com:8443/v1".to_string(),
        "TARGET_WITH_QUERY" => "https://api.example.com/?key=qk-777777".to_string(),
        "BAD_SCHEME" => "leaky-scheme-123456://api.example.com".to_string(),
        "HOST" => "api.example.com".to_string(),
        "N" => "7".to_string(),
        _ => return None,
    })
}

fn head(target: &str) -> String {
    format!(
        "name = \"t\"\ntarget = \"{target}\"\n[load]\nmodel = \"open\"\nstages = [{{ duration = \"2s\", target_rps = 10 }}]\n"
    )
}

/// A scenario with one endpoint whose lines are `endpoint`, and `top` before `[load]`.
fn scenario(top: &str, endpoint: &str) -> String {
    head("http://127.0.0.1:9").replace("[load]", &format!("{top}[load]"))
        + &format!("[[endpoint]]\nname = \"a\"\n{endpoint}")
}

fn load(dir: &Path, text: &str) -> Result<Scenario, Diagnostics> {
    parse(&dir.join("s.toml"), text, &env)
}

/// Asserts that `text` fails, that no diagnostic (file, position, message, hint) shows
/// the secret, and that one shows `written`, the scenario's own text.
#[track_caller]
fn check_hidden(text: &str, written: &str) {
    let dir = tempfile::tempdir().unwrap();
    check_hidden_in(dir.path(), text, written);
}

#[track_caller]
fn check_hidden_in(dir: &Path, text: &str, written: &str) {
    let e = load(dir, text).expect_err("should fail");
    let shown = format!("{e}\n{e:?}");
    assert!(!shown.contains(LEAK), "the value is shown:\n{shown}");
    assert!(
        !shown.to_lowercase().contains("leaky"),
        "the value is shown:\n{shown}"
    );
    assert!(shown.contains(written), "want {written:?} in:\n{shown}");
}

#[test]
fn a_path_that_does_not_start_with_a_slash_shows_the_reference() {
    check_hidden(
        &scenario("", "path = \"x${API_TOKEN}\"\n"),
        "path `x${API_TOKEN}` must start with `/`",
    );
}

#[test]
fn a_character_a_path_cannot_hold_in_a_value_names_the_variable() {
    check_hidden(
        &scenario("", "path = \"/a/${SPACED}\"\n"),
        "in the value of `${SPACED}`",
    );
    // Where: at the reference, not where the value would put the character.
    let e = load(Path::new("."), &scenario("", "path = \"/a/${SPACED}\"\n")).unwrap_err();
    assert_eq!((e.0[0].line, e.0[0].column), (8, 12), "{e}");
}

#[test]
fn a_template_placeholder_in_a_value_names_the_variable() {
    check_hidden(&scenario("", "path = \"/${TPL}\"\n"), "`${TPL}`");
    check_hidden(
        &scenario("", "path = \"/\"\nbody = \"${TPL}\"\n"),
        "`${TPL}`",
    );
    check_hidden(
        &scenario("", "path = \"/\"\nheaders = { X-A = \"${TPL}\" }\n"),
        "`${TPL}`",
    );
}

#[test]
fn a_template_placeholder_in_a_json_value_shows_the_name() {
    check_hidden(
        &scenario("", "path = \"/\"\njson = { a = \"${TPL}\" }\n"),
        "${TPL}",
    );
}

#[test]
fn a_character_a_header_cannot_hold_in_a_value_names_the_variable() {
    check_hidden(
        &scenario("", "path = \"/\"\nheaders = { X-Token = \"t ${CTRL}\" }\n"),
        "in the value of `${CTRL}`",
    );
}

#[test]
fn a_health_path_that_does_not_start_with_a_slash_shows_the_reference() {
    check_hidden(
        &scenario("[health]\npath = \"${API_TOKEN}\"\n", "path = \"/\"\n"),
        "health path `${API_TOKEN}` must start with `/`",
    );
}

#[test]
fn a_character_a_health_path_cannot_hold_in_a_value_names_the_variable() {
    check_hidden(
        &scenario("[health]\npath = \"/${SPACED}\"\n", "path = \"/\"\n"),
        "health path `/${SPACED}` has a character a URL cannot hold in the value of `${SPACED}`",
    );
}

#[test]
fn a_missing_data_file_is_named_as_written() {
    check_hidden(
        &scenario("data = { file = \"${API_TOKEN}.csv\" }\n", "path = \"/\"\n"),
        "cannot read data file",
    );
    check_hidden(
        &scenario("data = { file = \"${API_TOKEN}.csv\" }\n", "path = \"/\"\n"),
        "${API_TOKEN}.csv",
    );
}

#[test]
fn a_data_file_without_rows_is_named_as_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{LEAK}.csv")), "id\n").unwrap();
    check_hidden_in(
        dir.path(),
        &scenario("data = { file = \"${API_TOKEN}.csv\" }\n", "path = \"/\"\n"),
        "${API_TOKEN}.csv has no rows",
    );
}

#[test]
fn a_bad_row_of_a_data_file_is_placed_in_the_file_as_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{LEAK}.csv")), "id,plan\nu1\n").unwrap();
    check_hidden_in(
        dir.path(),
        &scenario("data = { file = \"${API_TOKEN}.csv\" }\n", "path = \"/\"\n"),
        "${API_TOKEN}.csv:2:",
    );
    // A value a header would send but cannot hold, in the same file.
    std::fs::write(dir.path().join(format!("{LEAK}.csv")), "id\nu\u{1}1\n").unwrap();
    check_hidden_in(
        dir.path(),
        &scenario(
            "data = { file = \"${API_TOKEN}.csv\" }\n",
            "path = \"/\"\nheaders = { X-Id = \"{{id}}\" }\n",
        ),
        "${API_TOKEN}.csv:2:",
    );
}

#[test]
fn a_target_scheme_from_the_environment_is_not_shown() {
    let text = head("${BAD_SCHEME}") + "[[endpoint]]\nname = \"a\"\npath = \"/\"\n";
    check_hidden(
        &text,
        "target `${BAD_SCHEME}` has a scheme that is not supported",
    );
}

/// A scenario that uses `${API_TOKEN}` everywhere a value can be interpolated.
fn everywhere(dir: &Path) -> Scenario {
    std::fs::write(dir.join(format!("{LEAK}.csv")), "id\nu1\n").unwrap();
    let text = head("${TARGET_URL}").replace(
        "[load]",
        "data = { file = \"${API_TOKEN}.csv\" }\n[health]\npath = \"/health/${SPACED_NOT_SET:-ok}/${API_TOKEN}\"\n[load]",
    ) + "[[endpoint]]\nname = \"a\"\npath = \"/p/${API_TOKEN}?n=${N}\"\nheaders = { X-Key = \"${API_TOKEN}\" }\nbody = \"b=${API_TOKEN}\"\n"
        + "[[endpoint]]\nname = \"b\"\npath = \"/\"\njson = { k = \"${API_TOKEN}\", \"${DEFAULTED:-default-key}\" = 1 }\n";
    load(dir, &text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_value_from_the_environment_is_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let s = everywhere(dir.path());
    let names: Vec<&str> = s.secrets.names().collect();
    assert_eq!(names, ["TARGET_URL", "API_TOKEN"]);
    // In each place it was used, and in the forms output gives it.
    for shown in [
        format!("GET /p/{LEAK}"),
        format!("\"body\":\"b={LEAK}\""),
        format!(
            "data file {}",
            dir.path().join(format!("{LEAK}.csv")).display()
        ),
        format!("{{\"k\":\"{LEAK}\"}}"),
    ] {
        let out = s.secrets.redact(&shown);
        assert!(!out.contains(LEAK) && out.contains("${API_TOKEN}"), "{out}");
    }
    // Defaults, short values, and the target's scheme, host, port and path are not.
    for kept in [
        "default-key",
        "ok",
        "7",
        "https://api.example.com:8443/v1",
        "page=2",
    ] {
        assert_eq!(s.secrets.redact(kept), kept);
    }
    // The target's user name and password are, as is the pair a Basic authorization
    // header carries.
    let url = url::Url::parse(&env("TARGET_URL").unwrap()).unwrap();
    for part in [url.username(), url.password().unwrap()] {
        assert_eq!(s.secrets.redact(part), "${TARGET_URL}");
    }
}

#[test]
fn a_target_with_a_query_is_refused_without_showing_it() {
    let text = head("${TARGET_WITH_QUERY}") + "[[endpoint]]\nname = \"a\"\npath = \"/\"\n";
    let e = load(Path::new("."), &text)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("target `${TARGET_WITH_QUERY}` has a query"),
        "{e}"
    );
    assert!(!e.contains("qk-777777"), "{e}");
}

#[test]
fn a_target_from_parts_registers_only_its_secret_parts() {
    let text =
        head("https://me:${API_TOKEN}@${HOST}/x") + "[[endpoint]]\nname = \"a\"\npath = \"/\"\n";
    let s = load(Path::new("."), &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.secrets.names().collect::<Vec<_>>(), ["API_TOKEN"]);
    assert_eq!(s.secrets.redact("api.example.com"), "api.example.com");
    assert_eq!(s.target_display(), "https://api.example.com/x");
}

#[test]
fn the_target_is_shown_without_its_secret_parts() {
    let u = url::Url::parse(
        "https://bob-user:pw-secret-9@api.example.com:8443/v1?key=qk-777777&page=2#frag-888",
    )
    .unwrap();
    assert_eq!(
        redact_url(&u),
        "https://api.example.com:8443/v1?key=***&page=***"
    );
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        everywhere(dir.path()).target_display(),
        "https://api.example.com:8443/v1"
    );
    let bare = url::Url::parse("http://h.example/?s3cr3t-token&a=&b=1").unwrap();
    assert_eq!(redact_url(&bare), "http://h.example/?***&a=***&b=***");
    let plain = url::Url::parse("http://user@h.example:80/").unwrap();
    assert_eq!(redact_url(&plain), "http://h.example");
}

#[test]
fn a_debug_print_shows_names_not_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = everywhere(dir.path());
    let shown = format!("{s:?}\n{s:#?}\n{:?}", s.secrets);
    assert!(!shown.contains(LEAK), "{shown}");
    assert!(!shown.contains("pw-secret-9"), "{shown}");
    assert!(shown.contains("API_TOKEN"), "{shown}");
    let _clone: Scenario = s.clone();
}

#[test]
fn a_caller_adds_what_it_takes_from_elsewhere() {
    let mut s = Secrets::new();
    s.add_url(
        "LOADGATE_TARGET",
        &url::Url::parse("https://u:p%40ss1@h.example/?t=tok1").unwrap(),
    );
    assert!(!s.add("SHORT", &"x".repeat(MIN_SECRET_LEN - 1)));
    assert_eq!(
        s.redact("p@ss1 u:p@ss1 p%40ss1 tok1 h.example Basic dTpwQHNzMQ=="),
        "${LOADGATE_TARGET} ${LOADGATE_TARGET} ${LOADGATE_TARGET} ${LOADGATE_TARGET} h.example Basic ${LOADGATE_TARGET}"
    );
}

/// Review of issue 22: a header of a flow's step whose value holds a captured variable
/// is secret (HTTP/2 never indexes it, a redirect to another origin leaves it out), as
/// a header from the environment is: a login's token in `X-Auth` is a credential.
#[test]
fn a_header_holding_a_captured_variable_is_secret() {
    let text = format!(
        "{}[[flow]]\nname = \"f\"\n[[flow.step]]\nname = \"login\"\nmethod = \"POST\"\npath = \"/login\"\ncapture = {{ token = \"$.token\" }}\n[[flow.step]]\nname = \"use\"\npath = \"/me\"\nheaders = {{ X-Auth = \"t {{{{token}}}}\", X-Plain = \"p\" }}\n",
        head("http://127.0.0.1:9")
    );
    let s = parse(Path::new("s.toml"), &text, &env).unwrap_or_else(|e| panic!("{e}"));
    let step = s.endpoints.iter().find(|e| e.name == "use").unwrap();
    let secret = |name: &str| step.headers.iter().find(|h| h.name == name).unwrap().secret;
    assert!(secret("X-Auth"));
    assert!(!secret("X-Plain"));
}
