//! Compiles `proto/*.proto` with protox (a pure-Rust protobuf compiler), so
//! building the crate needs no `protoc` binary on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["proto/ticket.proto", "proto/session.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
