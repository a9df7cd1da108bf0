//! Readable traces: per step the action, then every node's role, term, clock and lease.

use std::fmt::Write as _;

use stateright::Path;
use tenure_core::{Envelope, Invariant};

use crate::action::Action;
use crate::properties;
use crate::state::ClusterState;

/// Renders `path` step by step. With `violated`, ends with why the last state violates it.
pub fn render(path: &Path<ClusterState, Action>, violated: Option<&str>) -> String {
    let steps = path.clone().into_vec();
    let mut text = String::new();
    let Some((first, _)) = steps.first() else {
        return text;
    };
    let _ = writeln!(text, "initial state:");
    describe(&mut text, first);
    for (index, window) in steps.windows(2).enumerate() {
        let (before, action) = &window[0];
        let (after, _) = &window[1];
        let action = match action {
            None => "(none)".to_owned(),
            Some(action @ Action::Drop(message)) => match why_lost(before, &message.envelope) {
                Some(reason) => format!("{action} ({reason})"),
                None => action.to_string(),
            },
            Some(action) => action.to_string(),
        };
        let _ = writeln!(
            text,
            "step {:>3} at global time {:>2}: {action}",
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

/// Why a message is lost without costing a fault, if it is.
fn why_lost(state: &ClusterState, envelope: &Envelope) -> Option<&'static str> {
    if state.core(envelope.to.0 as usize).is_none() {
        Some("its receiver is down")
    } else if state.link_is_cut(envelope.from, envelope.to) {
        Some("the link is cut")
    } else {
        None
    }
}

fn describe(text: &mut String, state: &ClusterState) {
    for index in 0..state.node_count() {
        let _ = writeln!(text, "      {}", state.describe_node(index));
    }
    let _ = writeln!(text, "      {}", state.describe_network());
}
