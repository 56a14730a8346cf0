//! Profiles read, and refused where they are wrong.
use super::*;
use rand::SeedableRng;

#[test]
fn demo_profile_parses() {
    let p = Profile::demo();
    assert!(p.routes.iter().any(|r| r.path == "/api/agent/query"));
}

#[test]
fn lognormal_hits_its_median_and_p99() {
    let l = Latency::LogNormal {
        median: Duration::from_millis(100),
        p99: Duration::from_millis(900),
    };
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let mut v: Vec<f64> = (0..100_000)
        .map(|_| l.sample(&mut rng).as_secs_f64())
        .collect();
    v.sort_by(f64::total_cmp);
    assert!((v[50_000] - 0.1).abs() < 0.005, "{}", v[50_000]);
    assert!((v[99_000] - 0.9).abs() < 0.06, "{}", v[99_000]);
}

#[test]
fn bad_profiles_say_where() {
    let e = Profile::parse(
        "p.toml",
        "[[route]]\npath = \"/\"\nlatency = { dist = \"gamma\" }\n",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("p.toml:3:11: unknown latency dist"),
        "{e}"
    );
    let e = Profile::parse("p.toml", "[[route]]\npath = \"/a\"\nlatency = { dist = \"fixed\" }\n[[route]]\npath = \"/b\"\nburst = { every = \"1s\", for = \"2s\" }\n").unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("p.toml:3:11: latency dist `fixed` needs `value`")
            && text.contains("p.toml:6:9: burst needs"),
        "every broken route is reported: {text}"
    );
    let e = Profile::parse("p.toml", "[stall]\nevery = \"1s\"\nfreez = \"1s\"\n").unwrap_err();
    assert!(
        e.to_string().contains("p.toml:3:1: unknown field `freez`"),
        "{e}"
    );
}

/// Parses one `/s` route whose `[route.stream]` table holds `stream` (after `route`'s
/// own keys) and returns the error, or the stream.
fn stream_of(route: &str, stream: &str) -> Result<Stream, String> {
    let text = format!("[[route]]\npath = \"/s\"\n{route}[route.stream]\n{stream}");
    Profile::parse("p.toml", &text)
        .map(|p| p.routes[0].stream.expect("a stream"))
        .map_err(|e| e.to_string())
}

const TIMING: &str = "first_token = { dist = \"fixed\", value = \"300ms\" }\ntoken_gap = { dist = \"fixed\", value = \"30ms\" }\n";

#[test]
fn a_stream_reads_its_keys_and_defaults() {
    let s = stream_of("", &format!("{TIMING}tokens = 40\n")).unwrap();
    assert_eq!(s.format, StreamFormat::Sse);
    assert!(!s.asked_only && s.role_event);
    assert_eq!(s.tokens, Tokens::Fixed(40));
    assert_eq!((s.truncate, s.truncate_mode), (0.0, TruncateMode::Clean));
    assert_eq!((s.max_streams, s.ping_every), (None, None));
    let s = stream_of(
        "latency = { dist = \"fixed\", value = \"5ms\" }\nresponse = '{}'\n",
        &format!(
            "{TIMING}tokens = {{ min = 20, max = 60 }}\nformat = \"ndjson\"\nwhen = \"asked\"\ntruncate = 0.2\ntruncate_mode = \"abort\"\nmax_streams = 8\nrole_event = false\n"
        ),
    )
    .unwrap();
    assert_eq!(s.format, StreamFormat::Ndjson);
    assert!(s.asked_only && !s.role_event);
    assert_eq!(s.tokens, Tokens::Uniform(20, 60));
    assert_eq!((s.truncate, s.truncate_mode), (0.2, TruncateMode::Abort));
    assert_eq!(s.max_streams, Some(8));
    let s = stream_of("", &format!("{TIMING}tokens = 1\nping_every = \"1s\"\n")).unwrap();
    assert_eq!(s.ping_every, Some(Duration::from_secs(1)));
}

#[test]
fn a_broken_stream_says_where_and_what_to_write() {
    // Each case: the route's keys, the stream's keys (after TIMING unless they
    // start with "!"), and the start of the expected message.
    let cases = [
        ("", "tokens = 4\nfromat = \"sse\"\n", "p.toml:7:1: unknown field `fromat`"),
        ("", "tokens = 4\nformat = \"xml\"\n", "p.toml:7:10: unknown stream format `xml`; write \"sse\" or \"ndjson\""),
        ("", "tokens = 4\nwhen = \"sometimes\"\n", "p.toml:7:8: unknown stream `when` `sometimes`"),
        ("", "tokens = 4\ntruncate_mode = \"rst\"\n", "p.toml:7:17: unknown truncate_mode `rst`; write \"clean\" or \"abort\""),
        ("", "tokens = 0\n", "p.toml:6:10: tokens `0` is not a count; write a count of at least 1"),
        ("", "tokens = \"many\"\n", "p.toml:6:10: tokens `\"many\"` is not a count"),
        ("", "tokens = { min = 9, max = 3 }\n", "p.toml:6:10: tokens needs min <= max"),
        ("", "tokens = { min = 9 }\n", "p.toml:6:10: tokens range needs `min` and `max`"),
        ("", "tokens = { min = 1, max = 3, mean = 2 }\n", "p.toml:6:10: unknown tokens key `mean`"),
        ("", "tokens = 4\ntruncate = 1.5\n", "p.toml:7:12: truncate 1.5 must be between 0 and 1"),
        ("", "tokens = 4\nmax_streams = 0\n", "p.toml:7:15: max_streams must be at least 1"),
        ("", "tokens = 4\nformat = \"ndjson\"\nping_every = \"1s\"\n", "p.toml:8:14: NDJSON has no comment lines"),
        ("", "tokens = 4\nping_every = \"0s\"\n", "p.toml:7:14: ping_every must be above zero"),
        ("", "tokens = 4\nping_every = \"often\"\n", "p.toml:7:14: `often` is not a duration"),
        ("", "!token_gap = { dist = \"fixed\", value = \"1ms\" }\ntokens = 4\n", "p.toml:3:1: a stream needs `first_token`; write e.g. first_token = { dist = \"fixed\""),
        ("", "!first_token = { dist = \"fixed\", value = \"1ms\" }\ntokens = 4\n", "p.toml:3:1: a stream needs `token_gap`"),
        ("", "", "p.toml:3:1: a stream needs `tokens`; write e.g. tokens = 40"),
        ("", "!first_token = { dist = \"gamma\" }\n", "p.toml:4:15: unknown first_token dist `gamma`"),
        ("", "!first_token = { dist = \"fixed\", value = \"1ms\" }\ntoken_gap = { dist = \"uniform\", min = \"1ms\" }\n", "p.toml:5:13: token_gap dist `uniform` needs `max`"),
        ("latency = { dist = \"fixed\", value = \"5ms\" }\n", "tokens = 4\n", "p.toml:3:11: `latency` is unused: every answer of this route streams"),
        ("body_after = \"1s\"\n", "tokens = 4\n", "p.toml:3:14: `body_after` is unused"),
        ("response = '{}'\n", "tokens = 4\n", "p.toml:3:12: `response` is unused"),
        ("capacity_rps = 5\n", "tokens = 4\nwhen = \"asked\"\n", ""),
        ("", "tokens = 4\ntruncate = 1\n", ""),
        ("health = { unhealthy_for = \"1s\" }\n", "tokens = 4\nwhen = \"asked\"\n", "p.toml:3:10: a health route cannot stream"),
    ];
    for (route, stream, expected) in cases {
        let stream = match stream.strip_prefix('!') {
            Some(own) => own.to_string(),
            None => format!("{TIMING}{stream}"),
        };
        match stream_of(route, &stream) {
            Ok(_) => assert_eq!(expected, "", "{route}{stream} was accepted"),
            Err(e) => assert!(
                !expected.is_empty() && e.starts_with(expected),
                "{route}{stream}\nsaid:      {e}\nexpected:  {expected}"
            ),
        }
    }
}

#[test]
fn the_journey_tables_read_their_keys_and_default_to_off() {
    let p = Profile::parse("p.toml", "").unwrap();
    assert_eq!(p.auth.password, "demo");
    assert_eq!(p.auth.token_ttl, Duration::from_secs(300));
    assert!(!p.auth.protects("/api/agent/query") && !p.auth.protects("/api/me"));
    assert!(matches!(p.jobs.time, Latency::Fixed(d) if d == Duration::from_secs(2)));
    assert!(p.rate_limits.is_empty());

    let p = Profile::parse(
        "p.toml",
        "[auth]\npassword = \"s3cret\"\ntoken_ttl = \"2s\"\nprotect = [\"/api/agent/*\", \"/api/me\"]\n\
         [jobs]\ntime = { dist = \"uniform\", min = \"1s\", max = \"3s\" }\n\
         [rate_limit]\n\"/api/agent/*\" = { per_user = 10, per = \"1m\", method = \"post\" }\n\
         \"/api/me\" = { per_user = 3, per = \"1s\" }\n",
    )
    .unwrap();
    assert_eq!(p.auth.password, "s3cret");
    assert_eq!(p.auth.token_ttl, Duration::from_secs(2));
    for (path, protected) in [
        ("/api/agent/query", true),
        ("/api/agent/jobs/x", true),
        ("/api/agent/", true),
        ("/api/agent", false),
        ("/api/agents", false),
        ("/api/me", true),
        ("/api/me/x", false),
        ("/get", false),
    ] {
        assert_eq!(p.auth.protects(path), protected, "{path}");
    }
    assert!(
        matches!(p.jobs.time, Latency::Uniform(a, b) if a == Duration::from_secs(1) && b == Duration::from_secs(3))
    );
    let agent = &p.rate_limits[0];
    assert_eq!(
        (agent.path.as_str(), agent.method.as_deref()),
        ("/api/agent/*", Some("POST"))
    );
    assert_eq!((agent.per_user, agent.per), (10, Duration::from_secs(60)));
    assert!(agent.applies("POST", "/api/agent/jobs") && !agent.applies("GET", "/api/agent/jobs/x"));
    assert!(
        p.rate_limits[1].applies("GET", "/api/me") && p.rate_limits[1].applies("POST", "/api/me")
    );
    let p = Profile::parse("p.toml", "[jobs]\ntime = \"250ms\"\n").unwrap();
    assert!(matches!(p.jobs.time, Latency::Fixed(d) if d == Duration::from_millis(250)));
}

#[test]
fn a_broken_journey_table_says_where_and_what_to_write() {
    let cases = [
        ("[auth]\npasword = \"x\"\n", "p.toml:2:1: unknown field `pasword`"),
        ("[auth]\npassword = \"\"\n", "p.toml:2:12: password must not be empty"),
        ("[auth]\ntoken_ttl = \"soon\"\n", "p.toml:2:13: `soon` is not a duration"),
        ("[auth]\ntoken_ttl = \"500ms\"\n", "p.toml:2:13: token_ttl must be at least 1s"),
        ("[auth]\nprotect = [\"/ok\", \"api/*\"]\n", "p.toml:2:19: protect `api/*` is not a path pattern; write a path (\"/api/me\") or a prefix ending in `*`"),
        ("[auth]\nprotect = [\"/a*/b\"]\n", "p.toml:2:12: protect `/a*/b` is not a path pattern"),
        ("[auth]\nprotect = \"/api/*\"\n", "p.toml:2:11: invalid type: string \"/api/*\", expected a sequence"),
        ("[jobs]\ntime = \"later\"\n", "p.toml:2:8: jobs time `later` is not a duration"),
        ("[jobs]\ntime = 5\n", "p.toml:2:8: jobs time `5` is not a duration; write a duration (time = \"2s\") or a latency dist"),
        ("[jobs]\ntime = { dist = \"gamma\" }\n", "p.toml:2:8: unknown jobs time dist `gamma`"),
        ("[jobs]\ntime = { dist = \"fixed\", vale = \"1s\" }\n", "p.toml:2:8: jobs time: unknown field `vale`"),
        ("[jobs]\ntiem = \"1s\"\n", "p.toml:2:1: unknown field `tiem`"),
        ("[rate_limit]\n\"/api/*\" = { per_user = 0, per = \"1m\" }\n", "p.toml:2:25: per_user 0 must be a count of at least 1"),
        ("[rate_limit]\n\"/api/*\" = { per_user = 10, per = \"0s\" }\n", "p.toml:2:35: per must be between 1s and 24h"),
        ("[rate_limit]\n\"/api/*\" = { per_user = 10 }\n", "p.toml:2:12: missing field `per`"),
        ("[rate_limit]\n\"/api/*\" = { per_user = 10, per = \"1m\", user = \"x\" }\n", "p.toml:2:41: unknown field `user`"),
        ("[rate_limit]\n\"api\" = { per_user = 10, per = \"1m\" }\n", "p.toml:2:9: rate_limit path `api` is not a path pattern"),
        ("[rate_limits]\n", "p.toml:1:2: unknown field `rate_limits`"),
    ];
    for (text, expected) in cases {
        match Profile::parse("p.toml", text) {
            Ok(_) => panic!("{text} was accepted"),
            Err(e) => assert!(
                e.to_string().starts_with(expected),
                "{text}\nsaid:      {e}\nexpected:  {expected}"
            ),
        }
    }
    // Every broken table is reported, with the routes'.
    let e = Profile::parse(
        "p.toml",
        "[auth]\ntoken_ttl = \"0s\"\n[jobs]\ntime = \"x\"\n[[route]]\npath = \"/\"\nerror_rate = 2.0\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("p.toml:2:13") && e.contains("p.toml:4:8") && e.contains("p.toml:7:14"),
        "{e}"
    );
}

/// The shipped journey profile: auth on the agent, 2 s jobs, seed-001's AI limit.
#[test]
fn the_journey_profile_parses() {
    let p = Profile::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/profiles/journey.toml"
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(p.auth.protects("/api/agent/jobs") && p.auth.protects("/api/agent/query"));
    assert_eq!(p.auth.token_ttl, Duration::from_secs(60));
    assert_eq!(p.rate_limits[0].per_user, 10);
    assert!(p.routes.iter().any(|r| r.path == "/api/agent/query"));
}
