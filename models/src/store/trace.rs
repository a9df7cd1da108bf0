//! Readable traces of the store model: per step the action, then every node and the store.

use std::fmt::Write as _;

use stateright::Path;
use tenure_core::Invariant;

use crate::store::action::StoreAction;
use crate::store::properties;
use crate::store::state::StoreState;

/// Renders `path` step by step. With `violated`, ends with why the last state violates it.
pub fn render(path: &Path<StoreState, StoreAction>, violated: Option<&str>) -> String {
    let steps = path.clone().into_vec();
    let mut text = String::new();
    let Some((first, _)) = steps.first() else {
        return text;
    };
    let _ = writeln!(text, "initial state:");
    describe(&mut text, first);
    for (index, window) in steps.windows(2).enumerate() {
        let (_, action) = &window[0];
        let (after, _) = &window[1];
        let action = action
            .as_ref()
            .map_or_else(|| "(none)".to_owned(), ToString::to_string);
        let _ = writeln!(
            text,
            "step {:>3} at global time {:>4}: {action}",
            index + 1,
            after.time()
        );
        describe(&mut text, after);
    }
    if let (Some(name), Some((last, _))) = (violated, steps.last()) {
        let why = Invariant::from_name(name)
            .map(|invariant| properties::explain(invariant, last))
            .unwrap_or_default();
        let _ = writeln!(text, "=> {name} violated: {why}");
    }
    text
}

fn describe(text: &mut String, state: &StoreState) {
    for index in 0..state.node_count() {
        let _ = writeln!(text, "      {}", state.describe_node(index));
    }
    let _ = writeln!(text, "      {}", state.describe_store());
}
