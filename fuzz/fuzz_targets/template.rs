//! Any text as a request template, in every escaping mode: an error or a template that
//! renders, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use loadgate_scenario::{Escape, Names, RenderCtx, Template};
use rand::SeedableRng;

fuzz_target!(|text: &str| {
    let lists = vec!["q".to_string()];
    let values = vec![vec!["a\"b".to_string()]];
    let columns = vec!["userId".to_string()];
    for escape in [Escape::None, Escape::JsonString, Escape::Url] {
        if let Ok(t) = Template::compile(text, escape, &Names { lists: &lists, columns: &columns }) {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
            let row = vec!["u 1".to_string()];
            let _ = t.render_string(&mut RenderCtx { seq: 7, rng: &mut rng, row: Some(&row), lists: &values });
        }
    }
});
