//! The two suites' primitives side by side: signing and verifying one signature, and hashing
//! 200 bytes (about a transaction's unsigned encoding) in each suite's domain-separated form.
//! SM2 has no batch verification; ed25519's batch figure is `testnet`'s `c_sig`.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use shutong_types::sm::{Sm2VerifyingKey, hmac_sm3, sm3};
use shutong_types::{Hash, Keypair, Suite};
use std::hint::black_box;

fn signatures(c: &mut Criterion) {
    let mut group = c.benchmark_group("keys");
    let message = [7u8; 32];
    for &suite in Suite::ALL {
        let key = Keypair::from_seed_in(suite, "bench");
        let public = key.public();
        let signature = key.sign(&message);
        group.bench_function(format!("sign/suite={suite}"), |b| b.iter(|| black_box(&key).sign(black_box(&message))));
        group.bench_function(format!("verify/suite={suite}"), |b| {
            b.iter(|| black_box(&public).verify(black_box(&message), black_box(&signature)).expect("verifies"))
        });
    }
    // An SM2 key seen for the first time: the point's decompression and Z (one SM3), which the
    // verifying-key cache saves on every later signature by the same key.
    let compressed: Vec<[u8; 33]> = (0..64)
        .map(|i| match Keypair::from_seed_in(Suite::Sm2Sm3, &format!("cold-{i}")).public() {
            shutong_types::PublicKey::Sm2(bytes) => bytes,
            other => unreachable!("an SM2 seed made {other:?}"),
        })
        .collect();
    let mut i = 0;
    group.bench_function("sm2_key_setup/suite=sm2-sm3", |b| {
        b.iter_batched(
            || {
                i += 1;
                compressed[i % compressed.len()]
            },
            |bytes| Sm2VerifyingKey::from_compressed(&bytes).expect("on the curve"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn hashes(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash");
    let data = [5u8; 200];
    for &suite in Suite::ALL {
        group.bench_function(format!("tagged/suite={suite}/bytes=200"), |b| {
            b.iter(|| Hash::of(suite, shutong_types::hash::tag::TX, black_box(&data)))
        });
    }
    group.bench_function("plain/hash=blake3/bytes=200", |b| b.iter(|| blake3::hash(black_box(&data))));
    group.bench_function("plain/hash=sm3/bytes=200", |b| b.iter(|| sm3(black_box(&data))));
    group.bench_function("hmac/hash=sm3/bytes=200", |b| b.iter(|| hmac_sm3(b"a shared key", &[black_box(&data)])));
    group.finish();
}

criterion_group!(benches, signatures, hashes);
criterion_main!(benches);
