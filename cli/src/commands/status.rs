//! `shutong status` and `shutong block`: the chain as one node sees it.

use crate::context::{Ctx, Shown, shown};
use anyhow::Context as _;

pub(crate) async fn status(ctx: &Ctx) -> Shown {
    let status = ctx.client()?.status().await?;
    let text = format!(
        "chain {}  height {}  view {}  block {}\nstate root {}  mempool {} txs  validators {}  peers {}",
        status.chain_id,
        status.height,
        status.consensus_view,
        status.block_hash,
        status.state_root,
        status.mempool_txs,
        status.validators.len(),
        status.peers
    );
    shown(serde_json::to_value(&status)?, text)
}

pub(crate) async fn block(height: u64, ctx: &Ctx) -> Shown {
    let block = ctx.client()?.block(height).await?.with_context(|| format!("no block at height {height} yet"))?;
    let text = format!(
        "block {}  height {}  view {}  txs {}\nparent {}\nstate root (after parent) {}",
        block.hash,
        block.header.height,
        block.header.view,
        block.txs.len(),
        block.header.parent,
        block.header.state_root
    );
    shown(serde_json::to_value(&block)?, text)
}
