//! Private CAs and client certificates (issue 22): a target on 127.0.0.1 whose
//! certificate a CA made for the test signed, trusted with `--cacert`, `[tls] ca_file`
//! or `SSL_CERT_FILE` (and refused before any load without one); a target that
//! requires a client certificate, reached with `--cert`/`--key` or `[tls]`, over
//! HTTP/1.1 and HTTP/2; and TLS files that cannot be used, refused with their paths
//! and never their contents.

mod common;

use std::sync::Arc;

use common::pki::{Ca, PemKey};
use common::*;
use rustls::pki_types::PrivateKeyDer;

/// A target on 127.0.0.1 with a certificate `ca` signed, offering h2 and http/1.1 by
/// ALPN, and requiring a client certificate signed by `clients` when given.
fn target(ca: &Ca, clients: Option<&Ca>) -> loadgate_target::RunningTarget {
    target_speaking(ca, clients, rustls::DEFAULT_VERSIONS)
}

/// [`target`], speaking only the TLS `versions` given.
fn target_speaking(
    ca: &Ca,
    clients: Option<&Ca>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> loadgate_target::RunningTarget {
    let (_, der, key) = ca.issue(&["localhost", "127.0.0.1"], false);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = match clients {
        Some(c) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(c.issuer.der().clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(vec![der], PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    loadgate_target::spawn_with_tls(
        loadgate_target::Profile::parse("p", FAST_PROFILE).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        1,
        config,
    )
    .unwrap()
}

/// One second at 20 requests/s of the fast profile's POST, over `http`, with `tls` as
/// the scenario's `[tls]` table (empty: none).
fn case(http: &str, tls: &str) -> Case {
    let s = format!(
        "{}[defaults]\nhttp = \"{http}\"\n{tls}\n",
        scenario(
            "model = \"open\"\nstages = [{ duration = \"1s\", target_rps = 20 }]\nmax_late_ratio = 0.5",
            "",
        )
    );
    let c = Case::new(&s);
    std::fs::create_dir(c.dir.path().join("certs")).unwrap();
    c
}

fn write(c: &Case, name: &str, text: &str) {
    std::fs::write(c.dir.path().join(name), text).unwrap();
}

/// `loadgate run` of the case against `url` with `extra` flags and `env`, no ambient
/// OpenSSL variables (empty: unset).
fn run(c: &Case, url: &str, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut args = vec!["run", "{s}", "--out", "{out}", "-q", "--target", url];
    args.extend_from_slice(extra);
    let mut all = vec![("SSL_CERT_FILE", ""), ("SSL_CERT_DIR", "")];
    all.extend_from_slice(env);
    c.loadgate(&args, &all)
}

#[track_caller]
fn assert_passed(c: &Case, o: &std::process::Output) {
    assert_eq!(code(o), 0, "{}", text(o));
    let sent = c.summary()["overall"]["sent"].as_u64().unwrap();
    assert!(sent > 0, "{}", text(o));
    std::fs::remove_dir_all(c.out()).unwrap();
}

#[test]
fn a_private_ca_is_refused_before_load_and_trusted_with_cacert_ca_file_or_ssl_cert_file() {
    let ca = Ca::new("Company CA");
    let server = target(&ca, None);
    let url = server.base_url();
    let c = case("auto", "");
    write(&c, "certs/company-ca.pem", &ca.pem());

    // Without the CA: refused before any load, naming the reason and the fix.
    let o = run(&c, &url, &[], &[]);
    assert_eq!(code(&o), 6, "{}", text(&o));
    assert!(
        text(&o).contains("certificate signed by unknown authority"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("--cacert") && text(&o).contains("SSL_CERT_FILE"),
        "{}",
        text(&o)
    );
    assert_never_started(&c);
    assert_eq!(server.requests(), 0);

    // --cacert adds the CA (the built-in roots stay: they are not asked here).
    assert_passed(
        &c,
        &run(&c, &url, &["--cacert", "certs/company-ca.pem"], &[]),
    );
    // SSL_CERT_FILE, as OpenSSL and curl read it.
    let abs = c.dir.path().join("certs/company-ca.pem");
    assert_passed(
        &c,
        &run(&c, &url, &[], &[("SSL_CERT_FILE", abs.to_str().unwrap())]),
    );
    // SSL_CERT_DIR: a directory of PEM files, other files skipped.
    write(&c, "certs/README", "not a certificate");
    let dir = c.dir.path().join("certs");
    assert_passed(
        &c,
        &run(&c, &url, &[], &[("SSL_CERT_DIR", dir.to_str().unwrap())]),
    );

    // `[tls] ca_file` (relative to the scenario file: `loadgate-scenario`'s tests).
    let c2 = case("auto", "[tls]\nca_file = \"certs/company-ca.pem\"");
    write(&c2, "certs/company-ca.pem", &ca.pem());
    let o = c2.loadgate(&["validate", "{s}"], &[("SSL_CERT_FILE", "")]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_passed(&c2, &run(&c2, &url, &[], &[]));

    // Another CA's bundle does not help: the message says none of those signed it.
    let other = Ca::new("Other CA");
    write(&c, "certs/other.pem", &other.pem());
    let o = run(&c, &url, &["--cacert", "certs/other.pem"], &[]);
    assert_eq!(code(&o), 6, "{}", text(&o));
    assert!(
        text(&o).contains("1 CA certificate(s) given"),
        "{}",
        text(&o)
    );
    // A flag's CA replaces the environment's (as curl's --cacert does).
    let o = run(
        &c,
        &url,
        &["--cacert", "certs/other.pem"],
        &[("SSL_CERT_FILE", abs.to_str().unwrap())],
    );
    assert_eq!(code(&o), 6, "{}", text(&o));
}

#[test]
fn a_server_that_requires_a_client_certificate_is_refused_before_load_without_one() {
    let ca = Ca::new("Company CA");
    let clients = Ca::new("Client CA");
    let server = target(&ca, Some(&clients));
    let url = server.base_url();
    let (cert, _, key) = clients.issue(&["loadgate-client"], true);
    let key = key.pem_key();

    for http in ["http1", "http2", "auto"] {
        let c = case(http, "");
        write(&c, "certs/ca.pem", &ca.pem());
        write(&c, "certs/client.pem", &cert);
        write(&c, "certs/client.key", &key);
        // No client certificate: refused before any load (the target sees no request),
        // saying what to pass.
        let before = server.requests();
        let o = run(&c, &url, &["--cacert", "certs/ca.pem"], &[]);
        assert_eq!(
            server.requests(),
            before,
            "{http}: a request before the refusal"
        );
        assert_eq!(code(&o), 6, "{http}: {}", text(&o));
        assert!(
            text(&o).contains("requires a client certificate") && text(&o).contains("--cert"),
            "{http}: {}",
            text(&o)
        );
        assert_never_started(&c);
        // With one: it runs, over this HTTP version.
        let with = [
            "--cacert",
            "certs/ca.pem",
            "--cert",
            "certs/client.pem",
            "--key",
            "certs/client.key",
        ];
        assert_passed(&c, &run(&c, &url, &with, &[]));
        // Cert and key in one file, as curl's --cert takes them.
        write(&c, "certs/both.pem", &format!("{cert}{key}"));
        assert_passed(
            &c,
            &run(
                &c,
                &url,
                &["--cacert", "certs/ca.pem", "--cert", "certs/both.pem"],
                &[],
            ),
        );
    }

    // `[tls]` cert_file and key_file.
    let c = case(
        "http2",
        "[tls]\nca_file = \"certs/ca.pem\"\ncert_file = \"certs/client.pem\"\nkey_file = \"certs/client.key\"",
    );
    write(&c, "certs/ca.pem", &ca.pem());
    write(&c, "certs/client.pem", &cert);
    write(&c, "certs/client.key", &key);
    assert_passed(&c, &run(&c, &url, &[], &[]));

    // A certificate the server does not trust: refused, saying so.
    let (stranger, _, stranger_key) = Ca::new("Stranger CA").issue(&["who"], true);
    write(&c, "certs/stranger.pem", &stranger);
    write(&c, "certs/stranger.key", &stranger_key.pem_key());
    let o = run(
        &c,
        &url,
        &[
            "--cert",
            "certs/stranger.pem",
            "--key",
            "certs/stranger.key",
        ],
        &[],
    );
    assert_eq!(code(&o), 6, "{}", text(&o));
    assert!(
        text(&o).contains("rejected the client certificate"),
        "{}",
        text(&o)
    );
    assert_never_started(&c);
}

/// In TLS 1.2 the server refuses a missing client certificate inside the handshake (in
/// TLS 1.3, after the client's handshake ended): the same refusal, the same fix.
#[test]
fn a_tls_1_2_server_that_requires_a_client_certificate_is_refused_the_same_way() {
    let ca = Ca::new("Company CA");
    let clients = Ca::new("Client CA");
    let server = target_speaking(&ca, Some(&clients), &[&rustls::version::TLS12]);
    let url = server.base_url();
    let (cert, _, key) = clients.issue(&["loadgate-client"], true);
    let c = case("auto", "");
    write(&c, "certs/ca.pem", &ca.pem());
    write(&c, "certs/client.pem", &cert);
    write(&c, "certs/client.key", &key.pem_key());
    let o = run(&c, &url, &["--cacert", "certs/ca.pem"], &[]);
    assert_eq!(code(&o), 6, "{}", text(&o));
    assert!(
        text(&o).contains("requires a client certificate") && text(&o).contains("--cert"),
        "{}",
        text(&o)
    );
    assert_never_started(&c);
    let with = [
        "--cacert",
        "certs/ca.pem",
        "--cert",
        "certs/client.pem",
        "--key",
        "certs/client.key",
    ];
    assert_passed(&c, &run(&c, &url, &with, &[]));
}

#[test]
fn tls_files_that_cannot_be_used_are_refused_with_their_paths_never_their_contents() {
    let ca = Ca::new("Company CA");
    let (cert, _, key) = ca.issue(&["loadgate-client"], true);
    let key = key.pem_key();
    let (_, _, other_key) = ca.issue(&["other"], true);
    let c = case("auto", "");
    write(&c, "certs/ca.pem", &ca.pem());
    write(&c, "certs/client.pem", &cert);
    write(&c, "certs/client.key", &key);
    write(&c, "certs/other.key", &other_key.pem_key());
    write(&c, "certs/garbage.pem", "hello, not a certificate\n");
    // No TLS server is needed: files are read before the target is.
    let url = "https://127.0.0.1:9";
    let key_line = key.lines().nth(1).unwrap();
    let refused = |args: &[&str], env: &[(&str, &str)], says: &[&str]| {
        let o = run(&c, url, args, env);
        assert_eq!(code(&o), 2, "{args:?}: {}", text(&o));
        for s in says {
            assert!(
                text(&o).contains(s),
                "{args:?} should say {s:?}: {}",
                text(&o)
            );
        }
        assert!(
            !text(&o).contains(key_line),
            "a key's contents in the output: {}",
            text(&o)
        );
        assert_never_started(&c);
        // Issue 22: `validate` takes the same flags and refuses the same, first.
        let mut v = vec!["validate", "{s}", "--target", url];
        v.extend_from_slice(args);
        let o = c.loadgate(&v, env);
        assert_eq!(code(&o), 2, "validate {args:?}: {}", text(&o));
        for s in says {
            assert!(
                text(&o).contains(s),
                "validate {args:?} should say {s:?}: {}",
                text(&o)
            );
        }
        assert!(
            !text(&o).contains(key_line),
            "a key's contents: {}",
            text(&o)
        );
    };
    refused(
        &["--cacert", "certs/missing.pem"],
        &[],
        &["--cacert", "certs/missing.pem", "cannot read"],
    );
    refused(
        &["--cacert", "certs/garbage.pem"],
        &[],
        &["certs/garbage.pem", "not PEM", "hint:"],
    );
    refused(
        &["--cacert", "certs/client.key"],
        &[],
        &["certs/client.key", "no certificate"],
    );
    refused(
        &["--cert", "certs/client.pem"],
        &[],
        &["certs/client.pem", "no private key", "--key"],
    );
    refused(
        &["--cert", "certs/client.pem", "--key", "certs/other.key"],
        &[],
        &["certs/other.key", "does not match", "certs/client.pem"],
    );
    refused(
        &["--cert", "certs/client.key", "--key", "certs/client.key"],
        &[],
        &["no certificate"],
    );
    refused(
        &[],
        &[("SSL_CERT_FILE", "certs/garbage.pem")],
        &["SSL_CERT_FILE", "certs/garbage.pem"],
    );
    refused(
        &[],
        &[("SSL_CERT_DIR", "certs/nowhere")],
        &["SSL_CERT_DIR", "certs/nowhere"],
    );
    // The environment's CAs matter only to https: a plain-HTTP run is not refused.
    let o = run(
        &c,
        "http://127.0.0.1:9",
        &["--duration", "1s"],
        &[("SSL_CERT_FILE", "certs/garbage.pem")],
    );
    assert_ne!(code(&o), 2, "{}", text(&o));
    assert!(!text(&o).contains("SSL_CERT_FILE"), "{}", text(&o));
    // --key alone: a usage error.
    let o = run(&c, url, &["--key", "certs/client.key"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let o = c.loadgate(&["validate", "{s}", "--key", "certs/client.key"], &[]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    // Files that can be used: `validate` says ok.
    let o = c.loadgate(
        &[
            "validate",
            "{s}",
            "--target",
            url,
            "--cacert",
            "certs/ca.pem",
            "--cert",
            "certs/client.pem",
            "--key",
            "certs/client.key",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", text(&o));

    // A scenario's `[tls]` files: `validate` refuses what `run` would, with the key.
    let bad = |tls: &str, says: &[&str]| {
        let c = case("auto", tls);
        write(&c, "certs/client.pem", &cert);
        write(&c, "certs/other.key", &other_key.pem_key());
        write(&c, "certs/garbage.pem", "hello\n");
        for args in [
            &["validate", "{s}"][..],
            &["run", "{s}", "--out", "{out}", "-q", "--target", url],
        ] {
            let o = c.loadgate(args, &[("SSL_CERT_FILE", ""), ("SSL_CERT_DIR", "")]);
            assert_eq!(code(&o), 2, "{tls} {args:?}: {}", text(&o));
            for s in says {
                assert!(text(&o).contains(s), "{tls} should say {s:?}: {}", text(&o));
            }
            assert_never_started(&c);
        }
    };
    bad(
        "[tls]\nca_file = \"certs/missing.pem\"",
        &["s.toml:", "ca_file", "certs/missing.pem"],
    );
    bad(
        "[tls]\nca_file = \"certs/garbage.pem\"",
        &["[tls] ca_file", "certs/garbage.pem", "not PEM"],
    );
    bad(
        "[tls]\ncert_file = \"certs/client.pem\"\nkey_file = \"certs/other.key\"",
        &["[tls] cert_file/key_file", "does not match"],
    );
    bad(
        "[tls]\nkey_file = \"certs/other.key\"",
        &["key_file without cert_file"],
    );
}
