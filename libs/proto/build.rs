//! Compiles `proto/` with protox (a pure-Rust protobuf compiler), so that a
//! machine with only cargo builds the workspace: no system `protoc`.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "dirsync/common/v1/common.proto",
    "dirsync/provisioner/v1/provisioner.proto",
    "dirsync/directory/v1/directory_reader.proto",
    "dirsync/mapping/v1/mapping.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());

    let descriptors = protox::compile(PROTOS, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("dirsync_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
