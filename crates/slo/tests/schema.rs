//! `schemas/summary.schema.json` is the published JSON Schema of `summary.json`. It is
//! generated from the types, and this test keeps the committed file equal to them.
//! After changing the summary types, regenerate it with
//! `LOADGATE_BLESS=1 cargo test -p loadgate-slo --test schema` and review the diff.

use loadgate_slo::summary::RunSummary;

#[test]
fn the_published_schema_matches_the_types() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/summary.schema.json");
    let mut schema = schemars::schema_for!(RunSummary);
    schema.insert(
        "$id".into(),
        "https://loadgate.invalid/schemas/summary.schema.json".into(),
    );
    schema.insert("title".into(), "loadgate summary.json".into());
    let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    if std::env::var_os("LOADGATE_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == generated, "schemas/summary.schema.json is stale; regenerate with LOADGATE_BLESS=1 cargo test -p loadgate-slo --test schema");
}
