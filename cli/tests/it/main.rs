//! The process suite: the `shutong` binary run as operators run it, as testnets of real node
//! processes on 127.0.0.1 (consensus across processes, crashes, partitions, full nodes, the
//! examples) and as the command line. The helpers are shared with the in-process suite.

#![allow(clippy::unwrap_used)]

#[path = "../../../node/tests/it/common/mod.rs"]
mod common;

mod backup;
mod ceremony;
mod cli;
mod cluster;
mod crash;
mod deploy;
mod disk;
mod examples;
mod faults;
mod full_node;
mod membership;
mod provenance;
mod retention;
mod sm;
mod token;
