//! dirsync's wire contracts: the code generated from `proto/`, the encoded file descriptor
//! set that feeds gRPC reflection, and the wire form of errors. No service logic.
//!
//! Modules: one per proto package ([`common`], [`provisioner`], [`directory`], [`mapping`],
//! each with its `v1`); [`errors`]: statuses with google.rpc details, for servers and clients;
//! [`time`]: `Timestamp` from and to unix milliseconds. Also [`FILE_DESCRIPTOR_SET`] and
//! [`SERVICE_NAMES`].

pub mod errors;
pub mod time;

#[allow(unreachable_pub, missing_docs, clippy::all)]
pub mod common {
    pub mod v1 {
        tonic::include_proto!("dirsync.common.v1");
    }
}

#[allow(unreachable_pub, missing_docs, clippy::all)]
pub mod provisioner {
    pub mod v1 {
        tonic::include_proto!("dirsync.provisioner.v1");
    }
}

#[allow(unreachable_pub, missing_docs, clippy::all)]
pub mod directory {
    pub mod v1 {
        tonic::include_proto!("dirsync.directory.v1");
    }
}

#[allow(unreachable_pub, missing_docs, clippy::all)]
pub mod mapping {
    pub mod v1 {
        tonic::include_proto!("dirsync.mapping.v1");
    }
}

/// Every dirsync message and service, encoded, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/dirsync_descriptor.bin"));

/// Fully-qualified names of every dirsync gRPC service.
pub const SERVICE_NAMES: &[&str] = &[
    "dirsync.provisioner.v1.TenantService",
    "dirsync.provisioner.v1.UserService",
    "dirsync.provisioner.v1.GroupService",
    "dirsync.provisioner.v1.WorkService",
    "dirsync.provisioner.v1.Maas360ReadService",
    "dirsync.directory.v1.DirectoryReaderService",
    "dirsync.mapping.v1.MappingService",
];
