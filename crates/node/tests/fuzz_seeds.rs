//! The seed corpora of the fuzz targets in `fuzz/` (docs/fuzzing.md) are real encodings made by
//! this crate. This test checks that the committed seeds are still what the code produces, so
//! a format change cannot leave the fuzzers starting from stale inputs. Run it with
//! `TENURE_WRITE_FUZZ_SEEDS=1` to (re)write them.

use std::path::{Path, PathBuf};

use tenure_core::{Message, Term};
use tenure_node::state_file::{encode_state, StoredState};
use tenure_node::wire::{ClusterKey, Sealer};

fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let messages = [
        Message::PreVote { term: Term(5) },
        Message::PreVoteReply {
            term: Term(5),
            granted: true,
        },
        Message::RequestVote { term: Term(5) },
        Message::VoteReply {
            term: Term(5),
            granted: false,
        },
        Message::Heartbeat {
            term: Term(5),
            seq: 1,
        },
        Message::HeartbeatAck {
            term: Term(5),
            seq: 1,
        },
        Message::Resign { term: Term(5) },
        Message::TimeoutNow {
            term: Term(u64::MAX),
        },
    ];
    for (index, message) in messages.iter().enumerate() {
        seeds.push(("codec", format!("message-{index}"), message.encode()));
    }

    for (name, state) in [
        ("fresh", (0, None, 1)),
        ("voted", (5, Some("n2"), 3)),
        ("large", (u64::MAX, Some("node-with-a-long-name"), u64::MAX)),
    ] {
        let (term, voted_for, incarnation) = state;
        let state = StoredState {
            term,
            voted_for: voted_for.map(str::to_string),
            incarnation,
        };
        seeds.push((
            "state_file",
            name.to_string(),
            encode_state(&state).into_bytes(),
        ));
    }

    let example = include_str!("../../../deploy/tenure.toml");
    seeds.push(("config_file", "deploy-example".to_string(), example.into()));
    seeds.push((
        "config_file",
        "minimal".to_string(),
        b"id = \"n1\"\nstate_dir = \".\"\n[peers]\nn2 = \"10.0.0.2:7101\"\n".to_vec(),
    ));

    // The wire target reads a script (see its source): op 0 = raw bytes (length byte × 3),
    // op 1 = seal a header of its choosing, op 2 = replay, op 3 = flip a bit.
    let heartbeat = Message::Heartbeat {
        term: Term(5),
        seq: 1,
    }
    .encode();
    let mut sealer = Sealer::new(&ClusterKey::insecure(), 1, 7);
    let datagram = sealer.seal(0, &heartbeat).expect("a small payload");
    assert_eq!(
        datagram.len() % 3,
        0,
        "the raw op reads lengths in steps of 3"
    );
    let mut raw = vec![0, u8::try_from(datagram.len() / 3).expect("short")];
    raw.extend_from_slice(&datagram);
    seeds.push(("wire_open", "raw-heartbeat".to_string(), raw));
    let mut script = Vec::new();
    for sequence in [0u8, 1, 3, 2, 70] {
        // Seal: sender 1, receiver 0, small incarnation 1, small sequence, the heartbeat.
        script.extend_from_slice(&[1, 0x01, 1, sequence, 17]);
        script.extend_from_slice(&heartbeat);
    }
    script.extend_from_slice(&[2, 1, 3, 0, 9, 2]);
    // A restart of the sender: incarnation 2, sequence 0.
    script.extend_from_slice(&[1, 0x01, 2, 0, 0]);
    seeds.push(("wire_open", "seal-replay-flip".to_string(), script));
    seeds
}

fn seed_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds")
}

#[test]
fn committed_fuzz_seeds_are_current_encodings() {
    let write = std::env::var_os("TENURE_WRITE_FUZZ_SEEDS").is_some();
    for (target, name, bytes) in seeds() {
        let path = seed_directory().join(target).join(&name);
        if write {
            std::fs::create_dir_all(path.parent().expect("a parent")).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|problem| {
            panic!(
                "{}: {problem}; run TENURE_WRITE_FUZZ_SEEDS=1 cargo test -p tenure-node --test \
                 fuzz_seeds",
                path.display()
            )
        });
        assert_eq!(committed, bytes, "{} is stale", path.display());
    }
}
