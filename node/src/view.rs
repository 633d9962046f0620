//! The chain as admission and queries see it: committed state, read straight from storage.

use crate::mempool::{AdmitError, ChainView};
use shutong_codec::Decode;
use shutong_execution::executor::decode_nonce;
use shutong_storage::{Storage, Tip};
use shutong_types::keyspace::{self, Instance};
use shutong_types::{AccountId, Address};
use shutong_vm::Vm;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct NodeView {
    pub chain_id: String,
    pub storage: Arc<Storage>,
    pub vm: Arc<Vm>,
}

impl NodeView {
    pub fn tip(&self) -> Tip {
        self.storage.tip().expect("storage is initialised with genesis before the node starts")
    }

    pub fn instance(&self, contract: &Address) -> Option<Instance> {
        self.storage
            .state_get(&keyspace::instance(contract))
            .map(|bytes| Instance::decode(&bytes).expect("stored contract instance decodes"))
    }
}

impl ChainView for NodeView {
    fn chain_id(&self) -> &str {
        &self.chain_id
    }

    fn suite(&self) -> shutong_types::Suite {
        self.storage.suite()
    }

    fn next_height(&self) -> u64 {
        self.tip().height + 1
    }

    fn committed_nonce(&self, account: &AccountId) -> u64 {
        decode_nonce(self.storage.state_get(&keyspace::account_nonce(account)))
    }

    fn check_call(&self, contract: &Address, method: &str) -> Result<(), AdmitError> {
        if shutong_execution::lifecycle::is_lifecycle(contract) {
            return if shutong_execution::lifecycle::has_method(method) {
                Ok(())
            } else {
                Err(AdmitError::UnknownMethod { contract: *contract, method: method.to_string() })
            };
        }
        let instance = self.instance(contract).ok_or(AdmitError::UnknownContract(*contract))?;
        match self.vm.has_method(instance.code_hash, &*self.storage, method) {
            Ok(Some(true)) => Ok(()),
            Ok(Some(false)) => Err(AdmitError::UnknownMethod { contract: *contract, method: method.to_string() }),
            // Code that is missing or does not compile cannot be called: the contract is unusable.
            Ok(None) | Err(_) => Err(AdmitError::UnknownContract(*contract)),
        }
    }
}
