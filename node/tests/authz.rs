//! The authorisation story (`common/story.rs`) on a one-machine chain: the real VM, the
//! five system contracts calling each other, RocksDB.

#![allow(clippy::unwrap_used)]

mod common;

use common::chain::Chain;

#[test]
fn the_authorisation_story_holds_on_one_machine() {
    common::story::authorisation_story(&mut Chain::new());
}
