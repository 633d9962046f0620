//! The on-disk compiled-code cache: reused across VMs, and a damaged file is never trusted.

#![allow(clippy::unwrap_used)]

use shutong_types::ExecStatus;
use shutong_types::{AccountId, Address};
use shutong_vm::testing::overlay;
use shutong_vm::{CallContext, Vm, VmConfig};

const REGISTRY: &[u8] = include_bytes!("../../contracts/artifacts/registry.wasm");

fn cached_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for version in std::fs::read_dir(dir).unwrap() {
        for file in std::fs::read_dir(version.unwrap().path()).unwrap() {
            files.push(file.unwrap().path());
        }
    }
    files
}

fn call_get(vm: &Vm) -> ExecStatus {
    let ctx = CallContext { origin: AccountId([9; 32]), contract: Address([1; 32]), height: 1, time_ms: 0 };
    let args = shutong_codec::Encode::encode(&shutong_system_api::registry::GetOrg { id: "x".into() });
    vm.call(ctx, "get", args, 5_000_000, overlay(&[(Address([1; 32]), REGISTRY)], AccountId([9; 32]))).unwrap().status
}

#[test]
fn compiled_code_is_written_once_reused_and_recompiled_when_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = VmConfig { code_cache_dir: Some(dir.path().to_path_buf()), ..VmConfig::default() };
    let first = Vm::new(cfg.clone()).unwrap();
    let methods = first.validate(REGISTRY).unwrap();
    assert!(methods.contains(&"register".to_string()) && methods.contains(&"get".to_string()), "{methods:?}");
    let files = cached_files(dir.path());
    assert_eq!(files.len(), 1);
    let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();

    // A second VM loads it instead of compiling: the file is not rewritten.
    let second = Vm::new(cfg.clone()).unwrap();
    assert!(matches!(call_get(&second), ExecStatus::Aborted(_)), "get of a missing org aborts");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().modified().unwrap(), written);

    // A flipped byte fails the checksum: the file is dropped and the code compiled again.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&files[0], &bytes).unwrap();
    let third = Vm::new(cfg).unwrap();
    assert!(matches!(call_get(&third), ExecStatus::Aborted(_)));
    let rewritten = std::fs::read(&files[0]).unwrap();
    assert_ne!(rewritten, bytes, "the damaged file was replaced");
}
