//! Every WebAssembly feature the VM turns off is refused when code is validated, with an
//! error that names the feature; the features it keeps on are accepted. The table of
//! features and why each is on or off is in `docs/host-abi.md`.

#![allow(clippy::unwrap_used)]

use shutong_vm::{Vm, VmConfig};

/// (feature, a module that needs it, words the refusal must contain)
const OFF: &[(&str, &str, &str)] = &[
    ("SIMD", r#"(module (func (drop (v128.const i64x2 0 0))))"#, "SIMD support is not enabled"),
    (
        "relaxed SIMD",
        r#"(module (func (param v128) (result v128) (i32x4.relaxed_trunc_f32x4_s (local.get 0))))"#,
        "SIMD support is not enabled",
    ),
    ("threads", r#"(module (memory 1 1 shared))"#, "threads must be enabled"),
    ("multi-memory", r#"(module (memory 1) (memory 1))"#, "multiple memories"),
    ("memory64", r#"(module (memory i64 1))"#, "memory64 must be enabled"),
    ("tail calls", r#"(module (func $f (return_call $f)))"#, "tail calls support is not enabled"),
    ("reference types (externref)", r#"(module (table 1 externref))"#, "requires gc"),
    ("exceptions", r#"(module (tag $t) (func (throw $t)))"#, "exceptions proposal not enabled"),
    ("GC", r#"(module (type (struct)))"#, "gc types are disabled"),
    (
        "extended constant expressions",
        r#"(module (global i32 (i32.add (i32.const 1) (i32.const 2))))"#,
        "non-constant operator",
    ),
    (
        "wide arithmetic",
        r#"(module (func (param i64 i64 i64 i64) (result i64 i64)
             (i64.add128 (local.get 0) (local.get 1) (local.get 2) (local.get 3))))"#,
        "wide arithmetic support is not enabled",
    ),
    ("custom page sizes", r#"(module (memory 1 (pagesize 1)))"#, "custom page sizes proposal must be enabled"),
    ("stack switching", r#"(module (type $f (func)) (type $c (cont $f)))"#, "stack switching is disabled"),
];

/// Features the contracts' toolchain emits, deterministic on every machine.
const ON: &[(&str, &str)] = &[
    ("bulk memory", r#"(module (memory 1) (func (memory.fill (i32.const 0) (i32.const 0) (i32.const 0))))"#),
    ("multi-value", r#"(module (func (result i32 i32) (i32.const 1) (i32.const 2)))"#),
    ("sign extension", r#"(module (func (param i32) (result i32) (i32.extend8_s (local.get 0))))"#),
    ("saturating float-to-int", r#"(module (func (param f32) (result i32) (i32.trunc_sat_f32_s (local.get 0))))"#),
    ("mutable globals", r#"(module (global (export "g") (mut i32) (i32.const 0)))"#),
    ("floats (NaNs canonicalised)", r#"(module (func (param f64) (result f64) (f64.sqrt (local.get 0))))"#),
];

#[test]
fn each_disabled_feature_is_refused_with_an_error_that_names_it() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    for (feature, text, words) in OFF {
        let code = wat::parse_str(text).unwrap();
        let err = vm.validate(&code).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains(words), "{feature}: {err}");
    }
}

#[test]
fn the_enabled_features_are_accepted() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    for (feature, text) in ON {
        let code = wat::parse_str(text).unwrap();
        assert!(vm.validate(&code).is_ok(), "{feature} must validate");
    }
}
