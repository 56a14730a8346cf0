//! Any input to the scenario parser and the template compiler is an error or a value,
//! never a panic or a hang; diagnostics point inside the input.

use std::path::Path;

use loadgate_scenario::{parse, Escape, Names, Template};
use proptest::prelude::*;

const VALID: &str = r#"name = "t"
target = "embedded"
[lists]
q = ["a", "b"]
[[endpoint]]
name = "a"
method = "POST"
path = "/x/{{seq}}"
json = { q = "{{pick(q)}}" }
[load]
model = "open"
stages = [{ duration = "2s", target_rps = 10 }]
[slo]
budgets = ["p95 < 2s"]
"#;

fn check(text: &str) {
    if let Err(d) = parse(Path::new("f.toml"), text, &|_| None) {
        let lines = text.lines().count().max(1) + 1;
        for diag in &d.0 {
            assert!(diag.file.ends_with("f.toml"));
            assert!(diag.line >= 1 && diag.line <= lines, "{diag}");
            assert!(!diag.message.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        check(&s);
    }

    #[test]
    fn a_valid_file_with_one_byte_changed_never_panics(at in 0usize..VALID.len(), byte in 0u8..128) {
        let mut bytes = VALID.as_bytes().to_vec();
        bytes[at] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            check(&text);
        }
    }

    #[test]
    fn a_valid_file_cut_anywhere_never_panics(at in 0usize..VALID.len()) {
        check(&VALID[..at]);
    }

    #[test]
    fn templates_never_panic(s in "(\\PC|\\{\\{|\\}\\}|seq|uuid|pick\\(|random_int\\(|,|\\)){0,30}") {
        let lists = vec!["q".to_string()];
        let columns = vec!["userId".to_string()];
        for escape in [Escape::None, Escape::JsonString, Escape::Url] {
            if let Err(e) = Template::compile(&s, escape, &Names { lists: &lists, columns: &columns, vars: &[] }) {
                prop_assert!(e.offset <= s.len());
            }
        }
    }
}
