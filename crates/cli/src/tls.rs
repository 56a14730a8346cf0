//! The TLS files of a run, read and checked before any load: the CAs to trust beside
//! the built-in roots and the client certificate, from the flags (`--cacert`, `--cert`,
//! `--key`), the scenario's `[tls]` table, or OpenSSL's `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`. A file that cannot be used is a configuration error (exit 2) that
//! names the file, where it was given, and what to do; what is in a key file is never
//! shown.
//!
//! Not here: the handshake, or what a failed one means (`loadgate-engine`'s client,
//! and `reach.rs` before the load).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use loadgate_engine::{TlsFileError, TlsFiles};
use loadgate_scenario::Scenario;

use crate::exit::Failure;

/// The flags that name TLS files (`run`, `capacity` and `validate` take them alike).
#[derive(Debug, Default)]
pub(crate) struct TlsFlags<'a> {
    pub(crate) cacert: &'a [PathBuf],
    pub(crate) cert: Option<&'a Path>,
    pub(crate) key: Option<&'a Path>,
}

/// The TLS files of `scenario` under `flags`, with the environment `env` gives. CAs
/// come from the first of: every `--cacert`, `[tls] ca_file`, `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` (as curl: a CA named by hand wins over the environment's); each adds
/// to the built-in roots. The environment's are read only for an https target: a
/// variable set for other programs does not refuse a plain-HTTP run. The client certificate comes from `--cert`/`--key` when
/// given, else from `[tls] cert_file`/`key_file`.
pub(crate) fn load(
    scenario: &Scenario,
    flags: &TlsFlags<'_>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Arc<TlsFiles>, Failure> {
    let mut files = TlsFiles::default();
    let in_scenario = |key: &str| format!("{}: [tls] {key}", scenario.source.display());
    if !flags.cacert.is_empty() {
        for f in flags.cacert {
            files.add_ca_file(f).map_err(|e| refuse("--cacert", &e))?;
        }
    } else if let Some(f) = &scenario.tls.ca_file {
        files
            .add_ca_file(f)
            .map_err(|e| refuse(&in_scenario("ca_file"), &e))?;
    } else if https(scenario) {
        let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(f) = set("SSL_CERT_FILE") {
            files
                .add_ca_file(&f)
                .map_err(|e| refuse("SSL_CERT_FILE", &e))?;
        }
        if let Some(dirs) = set("SSL_CERT_DIR") {
            // OpenSSL's form: directories separated by `:`.
            for dir in std::env::split_paths(&dirs) {
                files
                    .add_ca_dir(&dir)
                    .map_err(|e| refuse("SSL_CERT_DIR", &e))?;
            }
        }
    }
    if let Some(cert) = flags.cert {
        files
            .set_client_cert(cert, flags.key)
            .map_err(|e| refuse("--cert/--key", &e))?;
    } else if let Some(cert) = &scenario.tls.cert_file {
        files
            .set_client_cert(cert, scenario.tls.key_file.as_deref())
            .map_err(|e| refuse(&in_scenario("cert_file/key_file"), &e))?;
    }
    Ok(Arc::new(files))
}

/// Whether the scenario's target speaks TLS.
fn https(scenario: &Scenario) -> bool {
    matches!(&scenario.target, loadgate_scenario::Target::Url(u) if u.scheme() == "https")
}

/// Exit 2, naming where the file was given.
fn refuse(given: &str, e: &TlsFileError) -> Failure {
    Failure::config(format!("{given}: {e}\n  hint: {}", e.hint))
}
